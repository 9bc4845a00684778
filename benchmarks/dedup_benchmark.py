"""Precision and recall of :func:`leads.dedup.find_duplicates` on real records with injected duplicates.

Data (from ``../shared/data``, or ``--shared``):

* base: the 12,799 real records of ``search/haystack_dev/haystack_dev.jsonl.gz`` (PubMed and PMC
  records: PMID, PMCID, title, abstract, year); first author lists are joined from the Cohen 2006
  CSVs (``screening/cohen2006/*.csv``, column ``authors``) by PMID, which covers the 8,461 Cohen
  records (the 4,338 evidence-inference records have no authors).
* injected: ``--inject`` (2,200, 200 per type) base records are copied with a realistic
  change, one variation type per copy. Every copy loses its PMID and PMCID (so only fuzzy
  matching can find it), except type ``pmid_kept``, which keeps its PMID and gets the
  ``combined`` changes (it exercises the identifier path). Half of the base records
  (``--strip-ids 0.5``) also have their PMID and PMCID hidden, as in an export that mixes MEDLINE
  and non-MEDLINE sources, so that base records with near-identical titles but different PMIDs
  can become false positives instead of being kept apart by the PMID rule.

Truth: a pair is a duplicate when it is (original, copy), or when both are base records sharing a
PMID or a PMCID (none do in haystack_dev). Base records with near-identical titles but different
PMIDs (19 groups, 40 records, have identical normalised titles: duplicate MEDLINE citations,
journal-club comments that reuse the commented article's title, recurring column titles, generic
titles like "Heart failure") count as distinct, because PubMed indexes them as distinct
citations. Predicted pairs are all pairs inside the groups that
:func:`leads.dedup.group_duplicates` builds from the links, so a wrong chain counts against
precision.

Second data set: all rows of the ten Cohen 2006 CSVs (9,510 rows, 980 PMIDs in more than one
file), PMIDs removed, truth = same PMID. Third: a scale run of ``--scale`` (100,000) records: the
base, the injected copies, and generated distinct records: real titles with half of their words
of four letters or more (at least two) replaced by random real title words, random real
abstracts, years and surnames, and no identifiers (so no candidate pair is ruled out by a PMID:
the worst case for the fuzzy pass).

Usage::

    python benchmarks/dedup_benchmark.py [--shared PATH] [--seed S] [--json] [--worst-case]
    python benchmarks/dedup_benchmark.py --seed 1 --tune      # threshold sweep on the dev seed
    python benchmarks/dedup_benchmark.py --seed 2 --worst-case  # the reported run
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import random
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from leads.dedup import (
    DEFAULT_THRESHOLD,
    DuplicateLink,
    candidate_pairs,
    find_duplicates,
    group_duplicates,
)
from leads.records import Record

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = Path(os.environ.get("LEADS_SHARED_DATA", REPO.parent / "shared" / "data"))
HAYSTACK = Path("search/haystack_dev/haystack_dev.jsonl.gz")
COHEN = Path("screening/cohen2006")

Pair = tuple[int, int]


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_cohen_rows(shared: Path) -> list[tuple[str, dict[str, str]]]:
    rows: list[tuple[str, dict[str, str]]] = []
    for path in sorted((shared / COHEN).glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            rows.extend((path.stem, row) for row in csv.DictReader(f))
    return rows


def split_authors(text: str) -> list[str]:
    return [a.strip() for a in text.split(";") if a.strip()]


def cohen_year(text: str) -> int | None:
    return int(float(text)) if text.strip() else None


def load_base(shared: Path) -> list[Record]:
    authors: dict[str, list[str]] = {}
    for _, row in load_cohen_rows(shared):
        names = split_authors(row["authors"])
        if names and row["pubmedID"] not in authors:
            authors[row["pubmedID"]] = names
    records = []
    with gzip.open(shared / HAYSTACK, "rt", encoding="utf-8") as f:
        for line in f:
            obj = json.loads(line)
            pmid = obj["pmid"] if obj["pmid"] not in (None, "None", "") else None
            records.append(
                Record(
                    source_id=obj["doc_id"],
                    pmid=pmid,
                    pmcid=obj["pmcid"],
                    title=obj["title"] or None,
                    abstract=obj["abstract"] or None,
                    year=int(obj["year"]) if obj["year"] else None,
                    authors=authors.get(pmid or "", []),
                )
            )
    return records


# ---------------------------------------------------------------------------------------------
# Variations
# ---------------------------------------------------------------------------------------------

Variation = Callable[[random.Random, Record], dict[str, Any]]


def v_case_punct(rng: random.Random, r: Record) -> dict[str, Any]:
    title = r.title or ""
    changes: list[Callable[[str], str]] = [
        str.lower,
        str.upper,
        lambda t: t.title(),
        lambda t: t.rstrip("."),
        lambda t: t.replace(": ", " - ").replace(":", " -"),
        lambda t: t.replace("-", " "),
        lambda t: t.replace(",", ""),
        lambda t: re.sub(r"\s*([:;,])\s*", r" \1 ", t),
        lambda t: t.replace("(", "[").replace(")", "]"),
    ]
    for change in rng.sample(changes, 2):
        title = change(title)
    return {"title": title}


def v_truncated(rng: random.Random, r: Record) -> dict[str, Any]:
    title = (r.title or "").rstrip(".")
    cut = int(len(title) * rng.uniform(0.6, 0.8))
    space = title.rfind(" ", 0, cut + 1)
    title = title[: space if space > 0 else cut].rstrip(" ,;:-")
    return {"title": title + ("..." if rng.random() < 0.5 else "")}


def v_subtitle_dropped(rng: random.Random, r: Record) -> dict[str, Any]:
    return {"title": (r.title or "").split(":", 1)[0].strip()}


def v_year(rng: random.Random, r: Record) -> dict[str, Any]:
    return {"year": (r.year or 2000) + rng.choice((-1, 1))}


def _initials(given: str, dots: bool) -> str:
    parts = [p for p in re.split(r"[\s.]+", given) if p]
    return "".join(p[0] + ("." if dots else "") for p in parts)


CORPORATE = {"group", "investigators", "study", "trial", "committee", "consortium", "collaborators"}


def v_author_format(rng: random.Random, r: Record) -> dict[str, Any]:
    # Cohen authors read "P Nazzaro" / "Virginia I Douglas"; rewrite as "Nazzaro, P." or "Nazzaro P".
    style = rng.choice(("comma", "medline"))
    out = []
    for name in r.authors:
        tokens = name.split()
        if len(tokens) < 2 or len(tokens) > 4 or CORPORATE & {t.lower() for t in tokens}:
            out.append(name)  # "Amisulpride Study Group" has no initials to move
            continue
        last, given = tokens[-1], " ".join(tokens[:-1])
        if style == "comma":
            out.append(f"{last}, {_initials(given, dots=True)}")
        else:
            out.append(f"{last} {_initials(given, dots=False)}")
    return {"authors": out}


def v_markup(rng: random.Random, r: Record) -> dict[str, Any]:
    title = r.title or ""
    words = title.split()
    changes: list[Callable[[str], str]] = [
        lambda t: t.replace(" and ", " &amp; ", 1),
        lambda t: t.replace("beta", "&beta;").replace("alpha", "&alpha;"),
        lambda t: t.replace("'", "&#39;"),
        lambda t: f"<p>{t}</p>",
        lambda t: t.replace(" ", "&nbsp;", 1),
    ]
    if len(words) > 2:

        def italic(t: str) -> str:
            parts = t.split()
            k = rng.randrange(len(parts))
            parts[k] = f"<i>{parts[k]}</i>"
            return " ".join(parts)

        changes.append(italic)
    for change in rng.sample(changes, 2):
        title = change(title)
    return {"title": title}


def v_abstract_missing(rng: random.Random, r: Record) -> dict[str, Any]:
    return {"abstract": None}


def v_typos(rng: random.Random, r: Record) -> dict[str, Any]:
    chars = list(r.title or "")
    for _ in range(rng.choice((1, 2))):
        letters = [i for i, c in enumerate(chars) if c.isalpha()]
        if len(letters) < 2:
            break
        i = rng.choice(letters[:-1])
        kind = rng.choice(("sub", "del", "swap"))
        if kind == "sub":
            chars[i] = rng.choice("abcdefghijklmnopqrstuvwxyz")
        elif kind == "del":
            del chars[i]
        else:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return {"title": "".join(chars)}


COMBINABLE: dict[str, Variation] = {
    "case_punct": v_case_punct,
    "truncated": v_truncated,
    "year_pm1": v_year,
    "author_format": v_author_format,
    "markup": v_markup,
    "abstract_missing": v_abstract_missing,
    "typos": v_typos,
}


def v_combined(rng: random.Random, r: Record) -> dict[str, Any]:
    update: dict[str, Any] = {}
    for name in rng.sample(sorted(COMBINABLE), 3):
        update.update(COMBINABLE[name](rng, r.model_copy(update=update)))
    return update


VARIATIONS: dict[str, Variation] = {
    "no_ids": lambda rng, r: {},
    "case_punct": v_case_punct,
    "truncated": v_truncated,
    "subtitle_dropped": v_subtitle_dropped,
    "year_pm1": v_year,
    "author_format": v_author_format,
    "markup": v_markup,
    "abstract_missing": v_abstract_missing,
    "typos": v_typos,
    "combined": v_combined,
    "pmid_kept": v_combined,
}


def eligible(kind: str, r: Record) -> bool:
    title = r.title or ""
    if len(title.split()) < 4:
        return False
    if kind == "subtitle_dropped":
        head = title.split(":", 1)[0]
        return ":" in title and len(head.split()) >= 3
    if kind == "year_pm1":
        return r.year is not None
    if kind == "author_format":
        return bool(r.authors)
    if kind == "abstract_missing":
        return bool(r.abstract)
    if kind == "pmid_kept":
        return r.pmid is not None
    return True


@dataclass
class Injected:
    records: list[Record]
    truth: set[Pair]
    kind_of: dict[Pair, str]
    n_base: int


def inject(base: list[Record], n: int, seed: int, strip_ids: float = 0.0) -> Injected:
    rng = random.Random(seed)
    per_kind = n // len(VARIATIONS)
    order = list(range(len(base)))
    rng.shuffle(order)
    used: set[int] = set()
    records = list(base)
    truth: set[Pair] = set()
    kind_of: dict[Pair, str] = {}
    for kind, vary in VARIATIONS.items():
        picked = [i for i in order if i not in used and eligible(kind, base[i])][:per_kind]
        for i in picked:
            used.add(i)
            original = base[i]
            update = vary(rng, original)
            update["source_id"] = f"dup-{kind}-{original.source_id}"
            if kind != "pmid_kept":
                update.update(pmid=None, pmcid=None, doi=None)
            records.append(original.model_copy(update=update))
            pair = (i, len(records) - 1)
            truth.add(pair)
            kind_of[pair] = kind
    truth |= shared_identifier_pairs(base)
    # Hide the identifiers of a share of the base records (as if exported from a database
    # without PMIDs); the truth above was taken before, so hidden-identifier twins still count.
    for i in range(len(base)):
        if rng.random() < strip_ids:
            records[i] = records[i].model_copy(update={"pmid": None, "pmcid": None, "doi": None})
    return Injected(records, truth, kind_of, len(base))


def shared_identifier_pairs(records: list[Record]) -> set[Pair]:
    by: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        for value in (f"pmid:{r.pmid}" if r.pmid else "", f"pmcid:{r.pmcid}" if r.pmcid else ""):
            if value:
                by[value].append(i)
    return {(a, b) for members in by.values() for a, b in combinations(members, 2)}


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


def predicted_pairs(n: int, links: list[DuplicateLink[int]]) -> set[Pair]:
    pairs: set[Pair] = set()
    for group in group_duplicates(range(n), links):
        pairs.update(combinations(group, 2))
    return pairs


@dataclass
class Result:
    name: str
    n_records: int
    n_truth: int
    n_predicted: int
    tp: int
    seconds: float
    cpu_seconds: float
    links_by_rule: dict[str, int]
    per_kind: dict[str, tuple[int, int]] = field(default_factory=dict)
    blocking_recall: float | None = None
    false_positives: list[dict[str, Any]] = field(default_factory=list)
    fp_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.tp / self.n_predicted if self.n_predicted else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.n_truth if self.n_truth else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "records": self.n_records,
            "true_pairs": self.n_truth,
            "predicted_pairs": self.n_predicted,
            "true_positives": self.tp,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "seconds": round(self.seconds, 2),
            "cpu_seconds": round(self.cpu_seconds, 2),
            "links_by_rule": self.links_by_rule,
            "per_kind_recall": {
                k: {"found": f, "total": t, "recall": round(f / t, 4) if t else None}
                for k, (f, t) in self.per_kind.items()
            },
            "blocking_recall": self.blocking_recall,
            "false_positive_kinds": self.fp_kinds,
            "false_positive_examples": self.false_positives,
        }


def evaluate(
    name: str,
    records: list[Record],
    truth: set[Pair],
    threshold: float,
    kind_of: dict[Pair, str] | None = None,
    n_base: int | None = None,
    n_real: int | None = None,
    blocking: bool = True,
    examples: int = 5,
) -> Result:
    start, cpu = time.perf_counter(), time.process_time()
    links = find_duplicates(enumerate(records), threshold=threshold)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu
    predicted = predicted_pairs(len(records), links)
    rules: dict[str, int] = defaultdict(int)
    for link in links:
        rules[link.rule] += 1
    result = Result(
        name,
        len(records),
        len(truth),
        len(predicted),
        len(predicted & truth),
        seconds,
        cpu_seconds,
        dict(rules),
    )
    if kind_of:
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for pair, kind in kind_of.items():
            counts[kind][1] += 1
            counts[kind][0] += pair in predicted
        result.per_kind = {k: (v[0], v[1]) for k, v in counts.items()}
    if blocking:
        candidates = candidate_pairs(records)
        result.blocking_recall = round(len(truth & candidates) / len(truth), 4) if truth else None
    fps = sorted(predicted - truth)
    fp_kinds: dict[str, int] = defaultdict(int)
    for a, b in fps:
        if n_base is None:
            fp_kinds["pair"] += 1
        elif n_real is not None and b >= n_real:
            fp_kinds["with-generated" if a < n_real else "generated-generated"] += 1
        elif b < n_base:
            fp_kinds["base-base"] += 1
        else:
            fp_kinds["copy-other"] += 1
    result.fp_kinds = dict(fp_kinds)
    rng = random.Random(0)
    for a, b in rng.sample(fps, min(examples, len(fps))):
        result.false_positives.append(
            {
                "a": describe(records[a]),
                "b": describe(records[b]),
            }
        )
    return result


def describe(r: Record) -> str:
    first = r.authors[0] if r.authors else "-"
    ident = f"PMID {r.pmid}" if r.pmid else (r.source_id or "")
    return f"{ident} | {r.year} | {first} | {(r.title or '')[:90]}"


# ---------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------


def cohen_crossfile(shared: Path) -> tuple[list[Record], set[Pair], int]:
    records: list[Record] = []
    pmids: list[str] = []
    for topic, row in load_cohen_rows(shared):
        records.append(
            Record(
                source_id=f"{topic}:{row['record_id']}",
                title=row["title"] or None,
                abstract=row["abstract"] or None,
                authors=split_authors(row["authors"]),
                year=cohen_year(row["year"]),
            )
        )
        pmids.append(row["pubmedID"])
    by: dict[str, list[int]] = defaultdict(list)
    for i, pmid in enumerate(pmids):
        by[pmid].append(i)
    truth = {(a, b) for m in by.values() for a, b in combinations(m, 2)}
    untitled = sum(1 for a, b in truth if not records[a].title or not records[b].title)
    return records, truth, untitled


def generate_distinct(base: list[Record], count: int, seed: int) -> list[Record]:
    """Records that are not duplicates of anything: real titles with half their words replaced."""
    rng = random.Random(seed)
    titled = [r for r in base if r.title]
    vocab = sorted({w for r in titled for w in (r.title or "").split() if len(w) > 3})
    surnames = sorted({a.split()[-1] for r in base for a in r.authors if a.split()})
    years = [r.year for r in base if r.year]
    abstracts = [r.abstract for r in base if r.abstract]
    out = []
    for n in range(count):
        template = rng.choice(titled)
        words = (template.title or "").split()
        # Replace half of the longer words, and at least two, so that no generated title is a
        # near-copy of its template (those would be duplicates, not distinct records).
        eligible = [k for k, w in enumerate(words) if len(w) > 3]
        for k in rng.sample(eligible, min(len(eligible), max(2, len(eligible) // 2))):
            words[k] = rng.choice(vocab)
        if len(eligible) < 2 or rng.random() < 0.5:
            words.insert(rng.randrange(len(words) + 1), rng.choice(vocab))
        authors = [
            f"{rng.choice('ABCDEFGHJKLMNPRSTW')} {rng.choice(surnames)}"
            for _ in range(rng.randint(1, 6))
        ]
        out.append(
            Record(
                source_id=f"gen-{n}",
                title=" ".join(words),
                abstract=rng.choice(abstracts) if rng.random() < 0.85 else None,
                authors=authors,
                year=rng.choice(years),
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------


def markdown(results: list[Result]) -> str:
    lines = [
        "| data set | records | true pairs | predicted pairs | precision | recall | F1 "
        "| wall (s) | CPU (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.n_records:,} | {r.n_truth:,} | {r.n_predicted:,} | "
            f"{r.precision:.4f} | {r.recall:.4f} | {r.f1:.4f} | {r.seconds:.2f} "
            f"| {r.cpu_seconds:.2f} |"
        )
    for r in results:
        if r.per_kind:
            lines += ["", f"Recall per variation type ({r.name}):", ""]
            lines += ["| variation | found / injected | recall |", "|---|---:|---:|"]
            for kind, (found, total) in r.per_kind.items():
                lines.append(f"| {kind} | {found} / {total} | {found / total:.3f} |")
    for r in results:
        extra = [f"links by rule: {r.links_by_rule}"]
        if r.blocking_recall is not None:
            extra.append(f"blocking recall (true pairs among candidate pairs): {r.blocking_recall}")
        extra.append(f"false-positive pairs: {r.n_predicted - r.tp} {r.fp_kinds}")
        lines += ["", f"{r.name}: " + "; ".join(extra)]
        for fp in r.false_positives:
            lines += [f"- `{fp['a']}`", f"  vs `{fp['b']}`"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    shared = Path(args.shared)
    if not (shared / HAYSTACK).is_file():
        sys.exit(f"haystack_dev not found under {shared} (pass --shared)")
    base = load_base(shared)
    injected = inject(base, args.inject, args.seed, args.strip_ids)
    report: dict[str, Any] = {
        "seed": args.seed,
        "strip_ids": args.strip_ids,
        "threshold": args.threshold,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }
    if args.tune:
        cohen, cohen_truth, _ = cohen_crossfile(shared)
        sweep = []
        for t in [0.80, 0.82, 0.84, 0.86, 0.88, 0.89, 0.90, 0.91, 0.92, 0.93, 0.94, 0.96, 0.98]:
            row: dict[str, Any] = {"threshold": t}
            for name, recs, truth in (
                ("haystack", injected.records, injected.truth),
                ("cohen", cohen, cohen_truth),
            ):
                r = evaluate(name, recs, truth, t, blocking=False)
                row[name] = {"precision": r.precision, "recall": r.recall, "f1": r.f1}
            sweep.append(row)
        report["sweep"] = sweep
        return report

    results = [
        evaluate(
            "haystack_dev + injected",
            injected.records,
            injected.truth,
            args.threshold,
            injected.kind_of,
            injected.n_base,
        )
    ]
    records, truth, untitled = cohen_crossfile(shared)
    results.append(evaluate("Cohen 2006 cross-file, PMIDs hidden", records, truth, args.threshold))
    report["cohen_untitled_pairs"] = untitled
    if args.scale:
        extra = generate_distinct(base, max(0, args.scale - len(injected.records)), args.seed)
        scale_records = injected.records + extra
        results.append(
            evaluate(
                f"scale: {len(scale_records):,} records",
                scale_records,
                injected.truth,
                args.threshold,
                injected.kind_of,
                injected.n_base,
                len(injected.records),
            )
        )
        if args.worst_case:
            # Every record in one year: the year filter no longer rules out any candidate pair.
            one_year = [r.model_copy(update={"year": 2000}) for r in scale_records]
            results.append(
                evaluate(
                    f"scale, all years set to 2000: {len(one_year):,} records",
                    one_year,
                    injected.truth,
                    args.threshold,
                    blocking=False,
                )
            )
    report["results"] = [r.as_dict() for r in results]
    report["markdown"] = markdown(results)
    return report


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=str(DEFAULT_SHARED), help="the shared data folder")
    parser.add_argument("--seed", type=int, default=2, help="seed (1 = tuning, 2 = report)")
    parser.add_argument("--inject", type=int, default=2200, help="number of injected copies")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument(
        "--strip-ids",
        type=float,
        default=0.5,
        help="share of base records whose PMID/PMCID are hidden from find_duplicates",
    )
    parser.add_argument("--scale", type=int, default=100_000, help="records in the scale run")
    parser.add_argument(
        "--worst-case",
        action="store_true",
        help="also time the scale run with every record in the same year",
    )
    parser.add_argument("--tune", action="store_true", help="sweep thresholds instead")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args(list(argv) if argv is not None else None)
    report = run(args)
    if args.json:
        report.pop("markdown", None)
        print(json.dumps(report, indent=2))
    elif "sweep" in report:
        print(f"seed {report['seed']}, identifiers hidden on {report['strip_ids']:.0%} of base\n")
        print("| threshold | haystack P | haystack R | haystack F1 | Cohen P | Cohen R | Cohen F1 |")  # fmt: skip
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for row in report["sweep"]:
            h, c = row["haystack"], row["cohen"]
            print(
                f"| {row['threshold']:.2f} | {h['precision']:.4f} | {h['recall']:.4f} "
                f"| {h['f1']:.4f} | {c['precision']:.4f} | {c['recall']:.4f} | {c['f1']:.4f} |"
            )
    else:
        print(
            f"seed {report['seed']}, threshold {report['threshold']}, "
            f"Python {report['python']}, {report['cpus']} CPUs\n"
        )
        print(report["markdown"])
        untitled = report["cohen_untitled_pairs"]
        print(f"\nCohen true pairs with an untitled row (unfindable without PMID): {untitled}")


if __name__ == "__main__":
    main()
