"""Examples from the annotated corpora of the developer data.

* **EBM-NLP** (``pico/ebmnlp_dev.txt``) -> ``pico``: the crowd-labelled participant,
  intervention and outcome spans of each abstract. The abstract's text is rebuilt from its
  tokens (no space before closing punctuation, none after opening brackets) with the offsets of
  every token kept, so each span is a substring of the text.
* **PICO-Corpus** (``pico/pico_corpus_dev``) -> ``pico``: ``eligibility``, ``age``,
  ``condition``, ``location`` and ``ethinicity`` spans as participants, ``intervention`` and
  ``control`` as interventions, ``outcome`` and ``outcome-Measure`` as outcomes;
  -> ``participants``: the number of participants per arm where the abstract annotates exactly
  one value for the intervention arm and one for the control arm (and at most one total), the
  arms named by the first intervention and control span; the quote is the annotated number's
  sentence. Written numbers ("Twenty") are given as digits.
* **RCT-ART** (``results/rct_art/gold_corpus``) -> ``results``: a result sentence, one outcome,
  the arms it names and one value per arm (the relations ``A1_RES``/``A2_RES`` and ``OC_RES``).
  Only outcomes whose every value belongs to that outcome alone, to an arm, and holds a single
  number; ``%`` makes the parameter type ``PERCENT``, otherwise ``NUMBER`` (the corpus does not
  say more); denominators and time frame are not annotated and left empty.
* **llm-meta-analysis** dev (``results/llm_meta_analysis_dev``) -> ``results``: events and group
  sizes (binary outcomes) or means and group sizes (continuous outcomes) per arm, on the
  article's abstract+results Markdown. Values in figures are left out, and so is a row whose
  numbers cannot be found in the text as written (the quote is the sentence or table row that
  holds them).
* **Evidence Inference** v2 (``fulltext/evidence_inference``) -> ``characteristics``: one field
  per prompt, "effect of the intervention vs the comparator on the outcome", valued
  ``significantly increased`` / ``significantly decreased`` / ``no significant difference``
  where every annotator with a valid label agreed, with the annotated evidence as the quote.
  Prompts whose evidence is in the abstract are asked on the title and abstract, the others on
  the full text (cut to the text budget; prompts whose evidence falls beyond it are left out).
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from leads.instruct.sources import Candidate, SharedSource, SourceSkipped, segment_around, text_key
from leads.tasks._base import truncate_text
from leads.tasks.extraction import (
    CharacteristicsInput,
    FieldSpec,
    Group,
    ParticipantsInput,
    PicoInput,
    ResultsInput,
)

__all__ = [
    "SOURCES",
    "detokenize",
    "parse_count",
    "read_ebmnlp",
    "read_pico_corpus",
]

# --- EBM-NLP ---------------------------------------------------------------------------------

_NO_SPACE_BEFORE = {",", ".", ";", ":", ")", "]", "%", "?", "!", "'s", "n't"}
_NO_SPACE_AFTER = {"(", "["}
_EBM_LABELS = {"I-PAR": "participants", "I-INT": "interventions", "I-OUT": "outcomes"}
_PICO_LIMITS = {"participants": 20, "interventions": 20, "outcomes": 30}


def detokenize(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join tokens into text with light detokenisation; returns the text and each token's offsets."""
    parts: list[str] = []
    offsets: list[tuple[int, int]] = []
    length = 0
    previous = ""
    for token in tokens:
        if parts and token not in _NO_SPACE_BEFORE and previous not in _NO_SPACE_AFTER:
            parts.append(" ")
            length += 1
        offsets.append((length, length + len(token)))
        parts.append(token)
        length += len(token)
        previous = token
    return "".join(parts), offsets


def read_ebmnlp(path: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """``(pmid, tokens, tags)`` per abstract of an EBM-NLP CoNLL file (sentences concatenated)."""
    pmid: str | None = None
    tokens: list[str] = []
    tags: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("-DOCSTART-"):
                if pmid is not None and tokens:
                    yield pmid, tokens, tags
                pmid = line.split("(", 1)[-1].rstrip().rstrip(")").strip()
                tokens, tags = [], []
                continue
            parts = line.split()
            if len(parts) == 4:
                tokens.append(parts[0])
                tags.append(parts[3])
    if pmid is not None and tokens:
        yield pmid, tokens, tags


_EDGE = " \t\n,;:=."


def clean_span(span: str) -> str | None:
    """A span with stray edge punctuation trimmed, or ``None`` for a fragment no reviewer would
    quote: unbalanced brackets, a one-letter first or last word ("n = 39) or", "operatively, n"),
    or no word of three letters. Trimming keeps the span a substring of the text."""
    text = span.strip(_EDGE)
    if not text:
        return None
    if text.count("(") != text.count(")") or text.count("[") != text.count("]"):
        return None
    words = text.split()
    if any(len(w) == 1 and w.isalpha() and w.lower() not in {"a"} for w in (words[0], words[-1])):
        return None
    if not re.search(r"[A-Za-z]{3,}", text):
        return None
    return text


def _pico_answer(spans: dict[str, list[str]]) -> dict[str, list[str]] | None:
    answer: dict[str, list[str]] = {}
    for label in _PICO_LIMITS:
        cleaned = (clean_span(s) for s in spans.get(label, []))
        answer[label] = list(dict.fromkeys(s for s in cleaned if s))
    if any(len(answer[label]) > limit for label, limit in _PICO_LIMITS.items()):
        return None
    if not any(answer.values()):
        return None
    return answer


def _ebmnlp(shared: Path, budget: int | None) -> Iterator[Candidate]:
    path = shared / "pico" / "ebmnlp_dev.txt"
    if not path.is_file():
        raise SourceSkipped(f"{path} is missing")
    for pmid, tokens, tags in read_ebmnlp(path):
        text, offsets = detokenize(tokens)
        spans: dict[str, list[str]] = defaultdict(list)
        start: int | None = None
        for i, tag in enumerate([*tags, "O"]):
            if start is not None and (i == len(tags) or tags[i] != tags[start]):
                label = _EBM_LABELS[tags[start]]
                spans[label].append(text[offsets[start][0]:offsets[i - 1][1]])
                start = None
            if i < len(tags) and tag in _EBM_LABELS and start is None:
                start = i
        answer = _pico_answer(spans)
        if answer is None:
            continue
        yield Candidate(task="pico", input=PicoInput(text=text), answer=answer, item=f"ebmnlp:{pmid}",
                        groups=[f"pmid:{pmid}", text_key(text)])


# --- PICO-Corpus -----------------------------------------------------------------------------

_PARTICIPANT_LABELS = {"eligibility", "age", "condition", "location", "ethinicity"}
_INTERVENTION_LABELS = {"intervention", "control"}
_OUTCOME_LABELS = {"outcome", "outcome-Measure"}
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}


def parse_count(text: str) -> int | None:
    """A participant count written as digits ("1,024", "n = 30") or in words up to ninety-nine."""
    cleaned = text.strip().casefold().replace(",", "")
    cleaned = re.sub(r"^(?:n\s*=\s*)", "", cleaned)
    if re.fullmatch(r"\d+", cleaned):
        return int(cleaned)
    words = re.split(r"[\s-]+", cleaned)
    if 1 <= len(words) <= 2 and all(w in _NUMBER_WORDS for w in words):
        values = [_NUMBER_WORDS[w] for w in words]
        if len(values) == 2 and not (values[0] >= 20 and values[0] % 10 == 0 and values[1] < 10):
            return None
        return sum(values)
    return None


def read_pico_corpus(folder: Path) -> Iterator[tuple[str, str, list[tuple[str, int, int, str]]]]:
    """``(pmid, text, [(label, start, end, span text)])`` per brat file pair, by PMID."""
    for txt in sorted(folder.glob("*.txt"), key=lambda p: (len(p.stem), p.stem)):
        text = txt.read_text(encoding="utf-8")
        annotations: list[tuple[str, int, int, str]] = []
        ann = txt.with_suffix(".ann")
        if ann.is_file():
            for line in ann.read_text(encoding="utf-8").splitlines():
                parts = line.split("\t")
                if not line.startswith("T") or len(parts) < 3:
                    continue
                label, *offsets = parts[1].replace(";", " ").split()
                try:
                    start, end = int(offsets[0]), int(offsets[-1])
                except (IndexError, ValueError):
                    continue
                if text[start:end] == parts[2]:
                    annotations.append((label, start, end, parts[2]))
        yield txt.stem, text, sorted(annotations, key=lambda a: (a[1], a[2]))


def _pico_corpus(shared: Path, budget: int | None) -> Iterator[Candidate]:
    folder = shared / "pico" / "pico_corpus_dev"
    if not folder.is_dir():
        raise SourceSkipped(f"{folder} is missing")
    for pmid, text, marks in read_pico_corpus(folder):
        groups = [f"pmid:{pmid}", text_key(text)]
        spans: dict[str, list[str]] = defaultdict(list)
        for label, _start, _end, span in marks:
            if label in _PARTICIPANT_LABELS:
                spans["participants"].append(span)
            elif label in _INTERVENTION_LABELS:
                spans["interventions"].append(span)
            elif label in _OUTCOME_LABELS:
                spans["outcomes"].append(span)
        answer = _pico_answer(spans)
        if answer is not None:
            yield Candidate(task="pico", input=PicoInput(text=text), answer=answer,
                            item=f"pico-corpus:{pmid}", groups=groups)
        counts = _arm_counts(pmid, text, marks)
        if counts is not None:
            yield Candidate(task="participants", input=counts[0], answer=counts[1],
                            item=f"pico-corpus:{pmid}#participants", groups=groups)


def _arm_counts(pmid: str, text: str, annotations: list[tuple[str, int, int, str]]
                ) -> tuple[ParticipantsInput, dict[str, Any]] | None:
    def first(label: str) -> str | None:
        return next((span for kind, _s, _e, span in annotations if kind == label), None)

    def single(label: str) -> tuple[int, int, int] | None:
        found = [(parse_count(span), start, end) for kind, start, end, span in annotations if kind == label]
        values = {value for value, _s, _e in found}
        if len(values) != 1 or None in values:
            return None
        value, start, end = found[0]
        return value, start, end  # type: ignore[return-value]

    intervention, control = first("intervention"), first("control")
    arm_i, arm_c = single("intervention-participants"), single("control-participants")
    if not (intervention and control and arm_i and arm_c):
        return None
    rows = [("BG000", f"Intervention: {intervention}", arm_i), ("BG001", f"Control: {control}", arm_c)]
    total_found = [a for a in annotations if a[0] == "total-participants"]
    if total_found:
        total = single("total-participants")
        if total is None:
            return None
        rows.append(("BG002", "Total", total))
    groups = [Group(id=gid, title=title[:300]) for gid, title, _ in rows]
    results = []
    for gid, _title, (value, start, end) in rows:
        seg_start, seg_end = segment_around(text, start, end)
        results.append({"groupId": gid, "value": str(value), "note": "", "quote": text[seg_start:seg_end]})
    inp = ParticipantsInput(text=text, measure="Number of participants", param_type="COUNT_OF_PARTICIPANTS",
                            unit="Participants", groups=groups)
    return inp, {"results": results}


# --- RCT-ART ---------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _measure(text: str) -> tuple[str, str] | None:
    """``(value, unit remainder)`` of a MEAS span with exactly one number."""
    numbers = _NUMBER.findall(text)
    if len(numbers) != 1:
        return None
    remainder = text[text.index(numbers[0]) + len(numbers[0]):].strip()
    before = text[:text.index(numbers[0])].strip()
    if before:
        return None
    return numbers[0], remainder


def _rct_art_sentence(data: dict[str, Any], item: str) -> Iterator[Candidate]:
    text = str(data.get("text", ""))
    spans = {(s["start"], s["end"]): s for s in data.get("spans") or []}
    outcome_of: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    arm_of: dict[tuple[int, int], list[tuple[str, tuple[int, int]]]] = defaultdict(list)
    for relation in data.get("relations") or []:
        head = (relation["head_span"]["start"], relation["head_span"]["end"])
        child = (relation["child_span"]["start"], relation["child_span"]["end"])
        if relation["label"] == "OC_RES":
            outcome_of[child].append(head)
        elif relation["label"] in ("A1_RES", "A2_RES"):
            arm_of[child].append((relation["label"], head))
    pmid = None
    user = str(data.get("user_data") or "")
    found = re.search(r"'pmid':\s*'(\d+)'", user)
    if found:
        pmid = found.group(1)
    groups_key = [text_key(text)] + ([f"pmid:{pmid}"] if pmid else [])
    outcomes = {o for heads in outcome_of.values() for o in heads}
    for outcome in sorted(outcomes):
        measures = [m for m, heads in outcome_of.items() if outcome in heads]
        if any(len(outcome_of[m]) != 1 or len(arm_of.get(m, [])) != 1 for m in measures):
            continue
        by_arm: dict[str, list[tuple[tuple[int, int], tuple[int, int]]]] = defaultdict(list)
        for m in measures:
            label, arm = arm_of[m][0]
            by_arm[label].append((arm, m))
        if any(len(v) != 1 for v in by_arm.values()) or not by_arm:
            continue
        rows = []
        for label in sorted(by_arm):
            arm, m = by_arm[label][0]
            parsed = _measure(text[m[0]:m[1]])
            if parsed is None or m not in spans:
                break
            rows.append((text[arm[0]:arm[1]].strip(), parsed))
        else:
            titles = [r[0] for r in rows]
            if len({t.casefold() for t in titles}) != len(titles):
                continue
            percent = [r[1][1].startswith(("%", "percent")) for r in rows]
            if any(percent) and not all(percent):
                continue
            units = {r[1][1] for r in rows if r[1][1]}
            if all(percent):
                param, unit = "PERCENT", "%"
            else:
                param = "NUMBER"
                unit = units.pop() if len(units) == 1 else ""
                if unit and (len(unit.split()) > 3 or re.search(r"\d", unit)):
                    continue
            groups = [Group(id=f"OG{i:03d}", title=title[:300]) for i, title in enumerate(titles)]
            answer = {"paramType": param, "unitOfMeasure": unit, "timeFrame": "", "unitOfDenom": "Participants",
                      "denomValue": [], "results": [{"title": t, "value": v[0], "quote": text.strip()}
                                                    for t, v in rows]}
            inp = ResultsInput(text=text, outcome=text[outcome[0]:outcome[1]].strip()[:500], groups=groups)
            yield Candidate(task="results", input=inp, answer=answer, item=f"{item}:{outcome[0]}",
                            groups=groups_key)


def _rct_art(shared: Path, budget: int | None) -> Iterator[Candidate]:
    folder = shared / "results" / "rct_art" / "gold_corpus"
    if not folder.is_dir():
        raise SourceSkipped(f"{folder} is missing")
    for path in sorted(folder.glob("*.jsonl.gz")):
        domain = path.name.split(".")[0]
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    yield from _rct_art_sentence(json.loads(line), f"rct-art:{domain}:{number}")


# --- llm-meta-analysis -----------------------------------------------------------------------


def _num(value: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return str(int(number)) if number == int(number) else value


def _segments(text: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    position = 0
    for line in text.splitlines(keepends=True):
        start, end = position, position + len(line.rstrip("\n"))
        position += len(line)
        if end <= start:
            continue
        cursor = start
        for match in re.finditer(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])", text[start:end]):
            out.append((cursor, start + match.start()))
            cursor = start + match.end()
        out.append((cursor, end))
    return [(s, e) for s, e in out if text[s:e].strip()]


def _holds(segment: str, value: str) -> bool:
    return re.search(rf"(?<![\d.]){re.escape(value)}(?![\d]|\.\d)", segment) is not None


def _quote_for(text: str, segments: list[tuple[int, int]], values: Sequence[str], outcome: str) -> str | None:
    """The sentence or table row holding all ``values`` (the one sharing most outcome words)."""
    words = set(re.findall(r"[a-z]{3,}", outcome.casefold()))
    best: tuple[int, int, str] | None = None
    for start, end in segments:
        segment = text[start:end]
        if all(_holds(segment, v) for v in values):
            overlap = len(words & set(re.findall(r"[a-z]{3,}", segment.casefold())))
            key = (overlap, -len(segment), segment.strip())
            if best is None or key[:2] > best[:2]:
                best = key
    return best[2] if best else None


def _llm_meta(shared: Path, budget: int | None) -> Iterator[Candidate]:
    folder = shared / "results" / "llm_meta_analysis_dev"
    table = folder / "annotated_rct_dataset_dev.csv"
    if not table.is_file():
        raise SourceSkipped(f"{table} is missing")
    with table.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    texts: dict[str, str] = {}
    for row in rows:
        if row.get("is_data_in_figure_graphics", "").upper() == "TRUE":
            continue
        pmcid = row["pmcid"].strip()
        path = folder / "markdown" / f"PMC{pmcid}.md"
        if not path.is_file():
            continue
        text = texts.setdefault(pmcid, path.read_text(encoding="utf-8"))
        if row["outcome_type"] == "binary":
            values = [_num(row["intervention_events"]), _num(row["comparator_events"])]
            param, unit = "COUNT_OF_PARTICIPANTS", "Participants"
        else:
            values = [_num(row["intervention_mean"]), _num(row["comparator_mean"])]
            param, unit = "MEAN", ""
        sizes = [_num(row["intervention_group_size"]), _num(row["comparator_group_size"])]
        if None in values or None in sizes:
            continue
        titles = [row["intervention"].strip(), row["comparator"].strip()]
        if not all(titles) or titles[0].casefold() == titles[1].casefold():
            continue
        segments = _segments(text)
        both = _quote_for(text, segments, values, row["outcome"])  # type: ignore[arg-type]
        quotes = [both, both] if both else [_quote_for(text, segments, [v], row["outcome"]) for v in values]  # type: ignore[list-item]
        if None in quotes:
            continue
        groups = [Group(id=f"OG{i:03d}", title=t[:300]) for i, t in enumerate(titles)]
        answer = {"paramType": param, "unitOfMeasure": unit, "timeFrame": "", "unitOfDenom": "Participants",
                  "denomValue": sizes,
                  "results": [{"title": t, "value": v, "quote": q} for t, v, q in zip(titles, values, quotes, strict=True)]}
        kind: Literal["binary", "continuous"] = "binary" if row["outcome_type"] == "binary" else "continuous"
        inp = ResultsInput(text=text, outcome=row["outcome"].strip()[:500], groups=groups, outcome_type=kind)
        yield Candidate(task="results", input=inp, answer=answer, item=f"llm-meta:{row['id']}",
                        groups=[f"pmc:{pmcid}"])


# --- Evidence Inference ----------------------------------------------------------------------

EFFECTS = {"1": "significantly increased", "-1": "significantly decreased", "0": "no significant difference"}
MAX_FIELDS = 6


def _effect_field(outcome: str, intervention: str, comparator: str) -> FieldSpec:
    name = f"Effect on {outcome}"
    if len(name) > 200:
        name = name[:197].rstrip() + "..."
    description = (f"Effect of {intervention[:300]} compared with {comparator[:300]} on {outcome[:300]}: "
                   "significantly increased, significantly decreased, or no significant difference")
    return FieldSpec(name=name, description=description)


def _evidence_inference(shared: Path, budget: int | None) -> Iterator[Candidate]:
    folder = shared / "fulltext" / "evidence_inference"
    if not (folder / "v2_annotations.csv").is_file():
        raise SourceSkipped(f"{folder / 'v2_annotations.csv'} is missing")
    with (folder / "prompts_merged.csv").open(encoding="utf-8", newline="") as fh:
        prompts = {row["PromptID"]: row for row in csv.DictReader(fh)}
    pmids: dict[str, str] = {}
    index = folder / "subset_index.csv"
    if index.is_file():
        with index.open(encoding="utf-8", newline="") as fh:
            pmids = {row["pmcid"]: row["pmid"] for row in csv.DictReader(fh) if row.get("pmid")}
    labels: dict[str, set[str]] = defaultdict(set)
    evidence: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    with (folder / "v2_annotations.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["Valid Label"] != "True":
                continue
            labels[row["PromptID"]].add(row["Label Code"])
            if row["Annotations"].strip():
                evidence[row["PromptID"]].append((int(row["Evidence Start"]), int(row["Evidence End"]),
                                                  row["Annotations"]))
    by_article: dict[str, list[str]] = defaultdict(list)
    for prompt_id, codes in labels.items():
        if len(codes) == 1 and next(iter(codes)) in EFFECTS and prompt_id in prompts and evidence[prompt_id]:
            by_article[prompts[prompt_id]["PMCID"]].append(prompt_id)
    for pmcid in sorted(by_article, key=int):
        path = folder / "txt" / f"PMC{pmcid}.txt.gz"
        if not path.is_file():
            continue
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            full = fh.read()
        body = full.find("\nBODY.")
        abstract = full[:body].rstrip() if body > 0 else full
        cut = {"abstract": truncate_text(abstract, budget), "full text": truncate_text(full, budget)}
        parts: dict[str, list[tuple[FieldSpec, str, str]]] = {"abstract": [], "full text": []}
        names: set[str] = set()
        for prompt_id in sorted(by_article[pmcid], key=int):
            prompt = prompts[prompt_id]
            spans = sorted(evidence[prompt_id], key=lambda e: (e[1] - e[0], e[0]))
            start, end, quote = spans[0]
            if full[start:end] != quote or not quote.strip():
                continue
            where = "abstract" if body < 0 or end <= body else "full text"
            if quote.strip() not in cut[where]:
                continue
            field = _effect_field(prompt["Outcome"].strip(), prompt["Intervention"].strip(), prompt["Comparator"].strip())
            if field.name.casefold() in names:
                continue
            names.add(field.name.casefold())
            parts[where].append((field, EFFECTS[next(iter(labels[prompt_id]))], quote.strip()))
        groups = [f"pmc:{pmcid}"] + ([f"pmid:{pmids[pmcid]}"] if pmcid in pmids else [])
        for where, fields in parts.items():
            text = abstract if where == "abstract" else full
            for chunk_start in range(0, len(fields), MAX_FIELDS):
                chunk = fields[chunk_start:chunk_start + MAX_FIELDS]
                inp = CharacteristicsInput(text=text, fields=[f for f, _v, _q in chunk])
                answer = [{"name": f.name, "value": value, "quote": quote} for f, value, quote in chunk]
                yield Candidate(task="characteristics", input=inp, answer=answer,
                                item=f"evidence-inference:PMC{pmcid}:{where}:{chunk_start // MAX_FIELDS}",
                                groups=groups)


SOURCES = (
    SharedSource(
        name="corpora/ebm-nlp",
        licence="EBM-NLP data without a licence file (via allenai/scibert, Apache-2.0)",
        tasks=("pico",),
        read=_ebmnlp,
        description="EBM-NLP dev (crowd labels): participant, intervention and outcome spans",
    ),
    SharedSource(
        name="corpora/pico-corpus",
        licence="PICO-Corpus repository has no licence file",
        tasks=("pico", "participants"),
        read=_pico_corpus,
        description="PICO-Corpus dev slice: PICO spans and per-arm participant counts",
    ),
    SharedSource(
        name="corpora/rct-art",
        licence="Apache-2.0 (jetsunwhitton/RCT-ART)",
        tasks=("results",),
        read=_rct_art,
        description="RCT-ART gold result sentences: outcome, arms and one value per arm",
    ),
    SharedSource(
        name="corpora/llm-meta-analysis",
        licence="Apache-2.0 (hyesunyun/llm-meta-analysis); article texts PMC Open Access",
        tasks=("results",),
        read=_llm_meta,
        description="llm-meta-analysis dev: arm-level events/means and group sizes on abstract+results text",
    ),
    SharedSource(
        name="corpora/evidence-inference",
        licence="MIT (jayded/evidence-inference); article texts PMC Open Access (per-article licences)",
        tasks=("characteristics",),
        read=_evidence_inference,
        description="Evidence Inference v2: direction of effect per prompt with the annotated evidence",
    ),
)
