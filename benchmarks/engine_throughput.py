"""LLM engine throughput with a local GGUF model (default SmolLM2-135M-Instruct Q4_1), on CPU.

    python benchmarks/engine_throughput.py [--n 20] [--max-tokens 256] [--threads N] [--json]

Three measurements:

``raw decode``  llama.cpp alone (``xllamacpp.Server.handle_completions``): a fixed 100-token prompt,
               128 tokens generated with EOS ignored, no grammar, prompt cache off; llama.cpp's own
               timings, median of 3, for each thread count in ``--raw-threads``.
``in-process``  the ``llamacpp`` engine (:class:`LLMEngine` over :class:`LlamaCppBackend`) on ``--n``
               eligibility inputs: real titles + abstracts from
               ``tests/fixtures/project/estrogens_150.jsonl`` (the first ``--n`` with an abstract) and
               three criteria written from the Estrogens (HRT) review's criteria; schema-constrained
               decoding, one attempt, the call-log cache off, temperature 0.
``HTTP``        the same inputs through ``leads.engines.serve.running_server`` (llama.cpp's HTTP
               server on 127.0.0.1) and the ``openai`` engine.

``calls/s`` counts engine runs (one model call each); ``gen tok/s`` is completion tokens over the
wall time of the whole run (prompt processing included); ``prompt tok/s`` likewise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from leads.engines import LLMEngine, MemoryCallLog
from leads.engines.llamacpp import LlamaCppBackend, default_model_path, default_threads
from leads.engines.openai import create as create_openai
from leads.engines.serve import running_server
from leads.errors import EngineError
from leads.tasks import TASKS

REPO = Path(__file__).resolve().parents[1]
RECORDS = REPO / "tests" / "fixtures" / "project" / "estrogens_150.jsonl"
# Written from ../shared/data/screening/criteria/Estrogens.txt (HRT users vs non-users, clinical
# outcomes, populations not selected for prior events).
CRITERIA = [
    {
        "text": "Compares women using hormone replacement therapy (estrogen with or without progestin) "
        "with non-users"
    },
    {"text": "Reports clinical outcomes of hormone replacement therapy use"},
    {
        "text": "Population selected because of prior events or conditions that raise the risk of the "
        "outcomes",
        "kind": "exclusion",
    },
]
RAW_PROMPT = (
    "Hormone replacement therapy in postmenopausal women has been studied in randomised trials "
    "and observational cohorts for decades. Summarise what is known about its effects on "
    "fractures, breast cancer, coronary heart disease, stroke and venous thromboembolism, "
    "and explain why the observational and randomised evidence disagreed."
)


def eligibility_inputs(n: int) -> list[dict[str, Any]]:
    inputs = []
    for line in RECORDS.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("abstract"):
            inputs.append(
                {"title": record["title"], "text": record["abstract"], "criteria": CRITERIA}
            )
        if len(inputs) == n:
            break
    return inputs


def raw_decode(model: Path, threads: int, n_tokens: int = 128, repeats: int = 3) -> dict[str, Any]:
    backend = LlamaCppBackend(model, n_ctx=2048, n_threads=threads)
    try:
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            out = backend._server.handle_completions(
                {
                    "prompt": RAW_PROMPT,
                    "max_tokens": n_tokens,
                    "temperature": 0,
                    "ignore_eos": True,
                    "cache_prompt": False,
                    "stream": False,
                }
            )
            wall = time.perf_counter() - started
            timings = out["timings"]
            assert timings["predicted_n"] == n_tokens, timings
            runs.append(
                {
                    "decode_tok_s": timings["predicted_per_second"],
                    "prompt_tok_s": timings["prompt_per_second"],
                    "prompt_tokens": timings["prompt_n"],
                    "wall_s": wall,
                }
            )
    finally:
        backend.close()
    return {
        "threads": threads,
        "prompt_tokens": runs[0]["prompt_tokens"],
        "generated_tokens": n_tokens,
        "decode_tok_s": statistics.median(r["decode_tok_s"] for r in runs),
        "prompt_tok_s": statistics.median(r["prompt_tok_s"] for r in runs),
        "wall_s": statistics.median(r["wall_s"] for r in runs),
    }


def run_engine(engine: LLMEngine, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    valid = failed = 0
    started = time.perf_counter()
    for inp in inputs:
        try:
            engine.run(TASKS["eligibility"], inp)
            valid += 1
        except EngineError:
            failed += 1
    wall = time.perf_counter() - started
    calls = engine.log.records  # type: ignore[attr-defined]
    completion = sum(c.completion_tokens or 0 for c in calls)
    prompt = sum(c.prompt_tokens or 0 for c in calls)
    cut = sum(
        1
        for c in calls
        if c.validation_errors
        and "the answer was cut off at the token limit" in c.validation_errors
    )
    other = Counter(
        re.sub(r"\d+", "N", c.validation_errors[0])[:70]
        for c in calls
        if c.validation_errors
        and "the answer was cut off at the token limit" not in c.validation_errors
    )
    return {
        "other_errors": dict(other),
        "runs": len(inputs),
        "model_calls": len(calls),
        "valid": valid,
        "failed": failed,
        "cut_off": cut,
        "wall_s": wall,
        "calls_per_s": len(inputs) / wall,
        "s_per_call": wall / len(inputs),
        "gen_tok_s": completion / wall,
        "prompt_tok_s": prompt / wall,
        "completion_tokens": completion,
        "prompt_tokens": prompt,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="GGUF file (default: SmolLM2-135M)"
    )
    parser.add_argument("--n", type=int, default=20, help="eligibility inputs (default 20)")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument(
        "--threads", type=int, default=None, help="engine threads (default: leads' default)"
    )
    parser.add_argument(
        "--raw-threads", default="1,2", help="thread counts for the raw decode test"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args()

    model = args.model or default_model_path()
    threads = args.threads or default_threads()
    inputs = eligibility_inputs(args.n)
    load_before = os.getloadavg()

    raw = [raw_decode(model, int(t)) for t in args.raw_threads.split(",") if t.strip()]

    backend = LlamaCppBackend(model, n_threads=threads)
    engine = LLMEngine(
        backend,
        log=MemoryCallLog(),
        max_tokens=args.max_tokens,
        max_attempts=1,
        cache=False,
        engine_name="llamacpp",
    )
    in_process = run_engine(engine, inputs)
    engine.close()

    with running_server(model, n_threads=threads) as url:
        http_engine = create_openai(
            base_url=url,
            log=MemoryCallLog(),
            max_tokens=args.max_tokens,
            max_attempts=1,
            cache=False,
        )
        over_http = run_engine(http_engine, inputs)
        http_engine.close()

    result = {
        "model": model.name,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "engine_threads": threads,
        "max_tokens": args.max_tokens,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "raw_decode": raw,
        "in_process": in_process,
        "http": over_http,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"Model {model.name}; {result['machine']}; engine threads {threads}; "
        f"max_tokens {args.max_tokens}; {len(inputs)} eligibility inputs x {len(CRITERIA)} criteria\n"
    )
    print("| raw llama.cpp (no grammar) | threads | prompt tok/s | decode tok/s |")
    print("|---|---:|---:|---:|")
    for r in raw:
        print(
            f"| {r['prompt_tokens']}-token prompt, {r['generated_tokens']} tokens | {r['threads']} "
            f"| {r['prompt_tok_s']:.0f} | {r['decode_tok_s']:.1f} |"
        )
    print()
    print(
        "| engine (eligibility) | calls/s | s/call | gen tok/s | prompt tok/s | valid / cut off / other error |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for label, r in (
        ("llamacpp, in-process", in_process),
        ("openai over HTTP (serve-model)", over_http),
    ):
        other = r["failed"] - r["cut_off"]
        print(
            f"| {label} | {r['calls_per_s']:.3f} | {r['s_per_call']:.2f} | {r['gen_tok_s']:.1f} "
            f"| {r['prompt_tok_s']:.0f} | {r['valid']} / {r['cut_off']} / {other} |"
        )
    for label, r in (("in-process", in_process), ("HTTP", over_http)):
        if r["other_errors"]:
            print(
                f"\n{label}, other errors: "
                + "; ".join(f"{n} x {e!r}" for e, n in r["other_errors"].items())
            )
    print(
        f"\nload average (1, 5, 15 min) before {tuple(round(x, 2) for x in load_before)}, "
        f"after {tuple(round(x, 2) for x in result['load_average_after'])}"
    )


if __name__ == "__main__":
    main()
