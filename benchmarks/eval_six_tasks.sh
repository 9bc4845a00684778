#!/usr/bin/env bash
# The six-task evaluation on the full developer data (docs/benchmarks.md, "Six-task evaluation").
# Usage: benchmarks/eval_six_tasks.sh [ENGINE] [OUT_DIR]   (default: classic, eval-out/)
# Needs ../shared/data (or $LEADS_SHARED_DATA). Each task writes OUT_DIR/<task>-<data>.json and .md.
set -euo pipefail
ENGINE="${1:-classic}"
OUT="${2:-eval-out}"
DATA="${LEADS_SHARED_DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}"
FIX="$(cd "$(dirname "$0")/.." && pwd)/tests/fixtures/eval"
mkdir -p "$OUT"
run() {  # run NAME leads-eval-args...
  local name="$1"; shift
  echo "== $name ($(date -u +%H:%M:%S))" >&2
  /usr/bin/time -f "$name: %e s wall, %U s user" leads eval "$@" --engine "$ENGINE" --json \
    --markdown "$OUT/$name.md" > "$OUT/$name.json"
}
LMA="$DATA/results/llm_meta_analysis_dev"
run search-cohen search --data "$DATA" --corpus haystack --topics cohen
run screening-estrogens screening --data "$DATA/screening/cohen2006/Estrogens.csv" \
  --criteria-file "$FIX/screening/estrogens_criteria.txt"
run screening-cdss-ro screening --data "$DATA/screening/other/CDSS_RO.csv" \
  --criteria-file "$DATA/screening/criteria/CDSS_RO.txt"
run arms-llm-meta-dev arms --data "$LMA/annotated_rct_dataset_dev.csv" --texts "$LMA/xml_abstract_and_results"
run arms-pico-corpus arms --data "$DATA/pico/pico_corpus_dev"
run results-llm-meta-dev results --data "$LMA/annotated_rct_dataset_dev.csv" --texts "$LMA/xml_abstract_and_results"
run participants-pico-corpus participants --data "$DATA/pico/pico_corpus_dev" --folds 0
run characteristics-consort-tm characteristics --data "$DATA/fulltext/consort_tm/xml"
