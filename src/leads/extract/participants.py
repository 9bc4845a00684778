"""Participant statistics: total and per-arm numbers of participants, age, sex, baseline measures.

Two entry points:

* :func:`describe_participants` reads a paper and returns the enrolment (the total number of
  participants and one group per arm with its N and type), age (mean ± SD, median with IQR or
  range, age range) and sex, every value with the sentence it comes from. This is what
  ``leads extract participants FILE --json`` prints: ``{"total": int|null, "groups": [{"name",
  "n", "type", ...}], ...}``.
* :func:`classic_participants` is the classic engine's ``participants`` task (a baseline measure
  for given groups, ClinicalTrials.gov style): it maps each requested group to an arm found in
  the paper (or to the whole sample for a "Total"/"Overall" group) and reports the measure.

How the numbers of participants are found. Every integer in the text (digits, "1,009",
"13 388", or words: "One hundred and seventy-six") is a candidate. A multinomial logistic
regression (``models/participants_counts.json``) classifies each as the total number of
participants, the N of an intervention arm, the N of a control arm, or something else, from its
context (neighbouring words, ``n =``, population nouns, randomisation verbs, brackets, place in
the abstract, the PICO CRF's labels around it) and arithmetic with the other candidates (a
number that is the sum of two others is likely a total; two numbers that add up to a third are
likely arms). It was trained on the PICO-Corpus dev slice of the shared data by
``python -m leads.extract.train_pico`` (``total-participants``, ``intervention-participants``
and ``control-participants`` annotations); ``leads eval participants`` measures it by
cross-validation. The arms of one trial are read from the one sentence that reports them
together; each arm's name is the intervention span (PICO CRF) next to its number.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from leads.engines.classic import implements
from leads.errors import EngineError
from leads.extract.numbers import parse_number, parse_number_words
from leads.extract.pico import PicoTagger, Sentence, Token, labels_to_spans
from leads.tasks._base import Evidence
from leads.tasks.extraction import GroupValue, ParticipantsInput, ParticipantsOutput

__all__ = [
    "COUNT_CLASSES",
    "COUNT_MODEL_FILE",
    "ArmCount",
    "CountCandidate",
    "CountModel",
    "ParticipantsSummary",
    "Statistic",
    "analyse",
    "candidate_features",
    "classic_participants",
    "count_candidates",
    "describe_participants",
    "parse_count",
]

COUNT_MODEL_FILE = "participants_counts.json"
COUNT_CLASSES = ("other", "total", "intervention", "control")
MODEL_VERSION = "counts-lr-1"

# --------------------------------------------------------------------------------------------
# Numbers written in words or digits
# --------------------------------------------------------------------------------------------

_UNITS = {w: i for i, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"])}
_TENS = {w: 10 * (i + 2) for i, w in enumerate(
    ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"])}
_SCALES = {"hundred": 100, "thousand": 1000}


def _word_value(word: str) -> int | None:
    w = word.lower()
    if w in _UNITS:
        return _UNITS[w]
    if w in _TENS:
        return _TENS[w]
    if "-" in w:
        a, _, b = w.partition("-")
        if a in _TENS and b in _UNITS and 0 < _UNITS[b] < 10:
            return _TENS[a] + _UNITS[b]
    return None


def parse_count(text: str) -> int | None:
    """An integer written in digits (``1,009``, ``13 388``) or words (``One hundred and
    seventy-six``); ``None`` for anything else (decimals, ranges, percentages)."""
    t = text.strip()
    if not t:
        return None
    if t[0].isdigit():
        value = parse_number(t)
        return int(value) if value is not None and value.is_integer() and "." not in t else None
    return parse_number_words(t)


# --------------------------------------------------------------------------------------------
# Candidates and their features
# --------------------------------------------------------------------------------------------


@dataclass
class CountCandidate:
    """An integer in the text: ``text[start:end]``; ``sentence``/``token`` index where it is."""

    start: int
    end: int
    value: int
    sentence: int
    token: int  # index of its first token in the sentence
    last_token: int
    spelled: bool = False
    probabilities: dict[str, float] = field(default_factory=dict)


@dataclass
class _Doc:
    text: str
    sentences: list[Sentence]
    tokens: list[list[Token]]
    labels: list[list[str]]  # PICO CRF labels per token


def analyse(text: str, tagger: PicoTagger | None = None) -> _Doc:
    """Sentences, tokens and PICO labels of a text (``tagger``: default the shipped CRF).

    With the shipped CRF the last few analyses are cached, so the characteristics, arms and
    participants of one paper tag it once."""
    if tagger is None:
        return _analyse_shipped(text)
    return _analyse_with(text, tagger)


@lru_cache(maxsize=4)
def _analyse_shipped(text: str) -> _Doc:
    return _analyse_with(text, PicoTagger.load())


def _analyse_with(text: str, tagger: PicoTagger) -> _Doc:
    tagged = tagger.tag_sentences(text)
    return _Doc(text, [s for s, _, _ in tagged], [t for _, t, _ in tagged], [lab for _, _, lab in tagged])


def count_candidates(doc: _Doc) -> list[CountCandidate]:
    """Integers of 1 to 10^7 that are not part of a decimal, range, date-like or unit token."""
    out: list[CountCandidate] = []
    for si, tokens in enumerate(doc.tokens):
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            word = tok.text
            if re.fullmatch(r"\d{1,3}(?:,\d{3})+|\d+", word):
                j = i
                # "13 388": a thousands group separated by a (thin) space.
                if (i + 1 < len(tokens) and re.fullmatch(r"\d{3}", tokens[i + 1].text)
                        and len(word) <= 3 and "," not in word
                        and doc.text[tok.end:tokens[i + 1].start] in {" ", "\u2009", "\u202f", "\u00a0"}):
                    j = i + 1
                start, end = tok.start, tokens[j].end
                value = parse_count(doc.text[start:end])
                if value is not None and 1 <= value <= 10_000_000 and not _in_decimal(doc.text, start, end):
                    out.append(CountCandidate(start, end, value, si, i, j))
                i = j + 1
                continue
            if _word_value(word) is not None:
                j = i
                while j + 1 < len(tokens) and (
                    _word_value(tokens[j + 1].text) is not None or tokens[j + 1].text.lower() in _SCALES
                    or (tokens[j + 1].text.lower() == "and" and j + 2 < len(tokens)
                        and tokens[j].text.lower() in _SCALES and _word_value(tokens[j + 2].text) is not None)
                ):
                    j += 1
                start, end = tok.start, tokens[j].end
                value = parse_count(doc.text[start:end])
                if value is not None and value >= 2:
                    out.append(CountCandidate(start, end, value, si, i, j, spelled=True))
                i = j + 1
                continue
            i += 1
    return out


def _in_decimal(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 1):start]
    after = text[end:end + 2]
    return before in {".", "-", "/", "–"} or (after[:1] in {".", "/", "-", "–"} and after[1:2].isdigit())


_POPULATION = frozenset(
    """patients patient women woman men subjects participants children adults volunteers cases
    individuals people persons survivors girls boys infants eligible consecutive evaluable
    postmenopausal premenopausal healthy outpatients smokers mothers couples pairs""".split()  # noqa: SIM905
)
_CUES = frozenset(
    """randomized randomised randomly assigned allocated enrolled included recruited entered total
    received receive receiving group groups arm arms control placebo versus vs vs. or and treated
    evaluable evaluated analyzed analysed completed eligible underwent respectively who were of to
    in on with n = ( ) ; : , followed died events had accrued participated""".split()  # noqa: SIM905
)
_CONTROL_WORDS = frozenset(
    """placebo control controls usual standard alone observation sham no none conventional
    untreated vehicle waiting wait-list""".split()  # noqa: SIM905
)
_SENTENCE_CUES = frozenset(
    """randomized randomised randomly assigned allocated enrolled included recruited total
    respectively versus placebo control evaluable analyzed analysed completed died survival
    rate response months years weeks mg""".split()  # noqa: SIM905
)


def _norm(word: str) -> str:
    return re.sub(r"\d", "0", word.lower())


def _sum_flags(values: list[int]) -> tuple[set[int], set[int]]:
    """(values that are the sum of two or three other candidates, values that are addends)."""
    sums: set[int] = set()
    addends: set[int] = set()
    distinct = sorted(set(values))
    present = set(values)
    for a_i, a in enumerate(distinct):
        for b in distinct[a_i:]:
            if a + b in present and (a != b or values.count(a) >= 2):
                sums.add(a + b)
                addends.update({a, b})
    return sums, addends


def candidate_features(doc: _Doc, cands: list[CountCandidate]) -> list[dict[str, float]]:
    values = [c.value for c in cands]
    sums, addends = _sum_flags(values)
    ranked = sorted(set(values), reverse=True)
    n_sent = len(doc.sentences)
    feats: list[dict[str, float]] = []
    per_sentence: dict[int, int] = {}
    for c in cands:
        per_sentence[c.sentence] = per_sentence.get(c.sentence, 0) + 1
    for order, c in enumerate(cands):
        toks = doc.tokens[c.sentence]
        labels = doc.labels[c.sentence]
        words = [t.text for t in toks]
        lower = [w.lower() for w in words]
        f: dict[str, float] = {"bias": 1.0}
        for off in (-3, -2, -1):
            k = c.token + off
            f[f"w{off}={_norm(words[k]) if k >= 0 else '<s>'}"] = 1.0
        for off in (1, 2, 3):
            k = c.last_token + off
            f[f"w+{off}={_norm(words[k]) if k < len(words) else '</s>'}"] = 1.0
        if c.token >= 2:
            f[f"bi-={_norm(words[c.token - 2])}|{_norm(words[c.token - 1])}"] = 1.0
        if c.last_token + 2 < len(words):
            f[f"bi+={_norm(words[c.last_token + 1])}|{_norm(words[c.last_token + 2])}"] = 1.0
        left = lower[max(0, c.token - 8):c.token]
        right = lower[c.last_token + 1:c.last_token + 9]
        for w in left:
            if w in _CUES or w in _POPULATION:
                f[f"L={w}"] = 1.0
        for w in right:
            if w in _CUES or w in _POPULATION:
                f[f"R={w}"] = 1.0
        if any(w in _CONTROL_WORDS for w in right[:6]):
            f["R_control"] = 1.0
        if any(w in _CONTROL_WORDS for w in left[-6:]):
            f["L_control"] = 1.0
        nxt = lower[c.last_token + 1:c.last_token + 5]
        if any(w in _POPULATION for w in nxt[:3]):
            f["next_population"] = 1.0
        if nxt[:1] == ["%"] or nxt[:1] == ["percent"]:
            f["percent"] = 1.0
        if nxt[:1] == ["("] and len(nxt) > 2 and (nxt[2] == "%" or (len(nxt) > 3 and nxt[3] == "%")):
            f["n_pct"] = 1.0
        if c.token >= 2 and lower[c.token - 1] == "=" and lower[c.token - 2] in {"n", "no"}:
            f["n_equals"] = 1.0
        if c.token >= 1 and lower[c.token - 1] in {"n=", "n"}:
            f["n_equals"] = 1.0
        depth = sum(1 if w == "(" else -1 if w == ")" else 0 for w in lower[:c.token])
        if depth > 0:
            f["in_brackets"] = 1.0
        if c.spelled:
            f["spelled"] = 1.0
        if c.token == 0:
            f["sentence_initial"] = 1.0
        f[f"magnitude={min(5, int(math.log10(max(1, c.value))))}"] = 1.0
        rank = ranked.index(c.value)
        f[f"rank={min(rank, 3)}"] = 1.0
        if c.value in sums:
            f["is_sum"] = 1.0
        if c.value in addends:
            f["is_addend"] = 1.0
        if 1900 <= c.value <= 2030:
            f["year_like"] = 1.0
        f[f"order={min(order, 5)}"] = 1.0
        f[f"in_sentence={min(per_sentence[c.sentence], 4)}"] = 1.0
        position = "title" if c.sentence == 0 else f"rel{min(4, int(5 * c.sentence / max(1, n_sent)))}"
        f[f"sentence={position}"] = 1.0
        heading = doc.sentences[c.sentence].heading
        if heading:
            f[f"heading={heading.split()[0].lower()}"] = 1.0
        for w in set(lower):
            if w in _SENTENCE_CUES:
                f[f"S={w}"] = 1.0
        f[f"crf={labels[c.token]}"] = 1.0
        after = labels[c.last_token + 1:c.last_token + 6]
        before = labels[max(0, c.token - 5):c.token]
        for lab in set(after):
            f[f"crf_right={lab}"] = 1.0
        for lab in set(before):
            f[f"crf_left={lab}"] = 1.0
        feats.append(f)
    return feats


# --------------------------------------------------------------------------------------------
# The count model (multinomial logistic regression, stored as JSON)
# --------------------------------------------------------------------------------------------


class CountModel:
    """Weights of the candidate classifier: ``P(class | features)`` by softmax."""

    _cache: dict[str, CountModel] = {}  # noqa: RUF012 - per-process cache by design
    _lock = threading.Lock()

    def __init__(self, classes: Sequence[str], weights: dict[str, list[float]], intercept: Sequence[float],
                 meta: dict[str, Any] | None = None) -> None:
        self.classes = tuple(classes)
        self.weights = weights
        self.intercept = list(intercept)
        self.meta = meta or {}

    @classmethod
    def load(cls, path: str | Path | None = None) -> CountModel:
        resolved = Path(path) if path is not None else Path(
            str(resources.files("leads.extract").joinpath("models", COUNT_MODEL_FILE)))
        key = str(resolved)
        with cls._lock:
            found = cls._cache.get(key)
            if found is None:
                if not resolved.is_file():
                    raise EngineError(
                        f"the participant-count model {resolved} is missing; build it with "
                        "`python -m leads.extract.train_pico --shared ../shared/data`"
                    )
                data = json.loads(resolved.read_text(encoding="utf-8"))
                found = cls(data["classes"], data["weights"], data["intercept"], data.get("meta"))
                cls._cache[key] = found
        return found

    def to_json(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "intercept": [round(x, 5) for x in self.intercept],
                "weights": {k: [round(x, 5) for x in v] for k, v in sorted(self.weights.items())},
                "meta": self.meta}

    def predict(self, feats: Sequence[dict[str, float]]) -> list[dict[str, float]]:
        out = []
        for f in feats:
            scores = list(self.intercept)
            for name, value in f.items():
                w = self.weights.get(name)
                if w is not None:
                    for k in range(len(scores)):
                        scores[k] += w[k] * value
            top = max(scores)
            exp = [math.exp(s - top) for s in scores]
            z = sum(exp)
            out.append({c: e / z for c, e in zip(self.classes, exp, strict=True)})
        return out


# --------------------------------------------------------------------------------------------
# Decoding: total and arms
# --------------------------------------------------------------------------------------------


class Statistic(BaseModel):
    """A number with its kind and the sentence that reports it."""

    model_config = ConfigDict(extra="forbid")
    kind: str = Field(description="mean, sd, median, iqr, range, min, max, count, percent")
    value: float
    unit: str = ""
    text: str = Field(description="the words that gave the value")
    evidence: list[Evidence] = Field(default_factory=list)


class ArmCount(BaseModel):
    """One arm's number of participants. ``name`` is taken from the text next to the number;
    when nothing there names the arm it is ``"intervention group"`` or ``"control group"``."""

    model_config = ConfigDict(extra="forbid")
    name: str
    type: str = Field(description="intervention or control")
    n: int | None
    probability: float
    evidence: list[Evidence] = Field(default_factory=list)


class ParticipantsSummary(BaseModel):
    """What :func:`describe_participants` found; ``None``/empty = not reported."""

    model_config = ConfigDict(extra="forbid")
    total: int | None
    total_evidence: list[Evidence] = Field(default_factory=list)
    groups: list[ArmCount] = Field(default_factory=list)
    age: list[Statistic] = Field(default_factory=list)
    sex: list[Statistic] = Field(default_factory=list)
    version: str = MODEL_VERSION


TOTAL_THRESHOLD = 0.2
ARM_THRESHOLD = 0.3
ARM_RATIO = 0.2


def _sentence_evidence(doc: _Doc, index: int) -> list[Evidence]:
    s = doc.sentences[index]
    return [Evidence(quote=s.text, start=s.start, end=s.end)]


_LEAD_IN = re.compile(
    r"^(?:.*?\b(?:assigned|allocated|randomi[sz]ed|randomly|were|was)\s+)?"
    r"(?:(?:to|on|in|into|with|received|receiving|receive|undergo|underwent|treated|the|either|of|group|arm|"
    r"patients|women|men|subjects|participants|children)\s+)+", re.I)
_TRAILER = re.compile(r"\s+(?:groups?|arms?)$|\s*[,;:(]+$|\s+(?:or|and|versus|vs\.?)$", re.I)


def _clean_name(text: str) -> str:
    name = " ".join(text.split())
    name = _LEAD_IN.sub("", name)
    for _ in range(3):
        name = _TRAILER.sub("", name).strip(" ,;:()")
    name = re.sub(r"^(?:or|and|versus|vs\.?|to|the|an?)\s+", "", name, flags=re.I)
    # A clause after the name: "control group were excluded" -> "control group".
    name = re.split(r"\s+(?:were|was|had|have|has|who|which|that|did|completed|died)\b", name, maxsplit=1)[0]
    for _ in range(2):
        name = _TRAILER.sub("", name).strip(" ,;:()")
    return name


def _arm_name(doc: _Doc, c: CountCandidate, kind: str, neighbours: Sequence[CountCandidate]) -> str:
    """The name of an arm, from the words around its number.

    ``aspirin (n = 60)``: the words before the bracket; ``60 to aspirin``, ``60 on aspirin``:
    the words after the number, up to the next arm's number. An intervention span of the PICO
    CRF inside that region is preferred; else the region's words without the verbs around them.
    """
    sentence = doc.sentences[c.sentence]
    text = doc.text
    toks = doc.tokens[c.sentence]
    lower = [t.text.lower() for t in toks]
    depth = sum(1 if w == "(" else -1 if w == ")" else 0 for w in lower[:c.token])
    others = [o for o in neighbours if o is not c]
    spans = [sp for sp in labels_to_spans(text, toks, doc.labels[c.sentence]) if sp.label == "interventions"]

    # Right of the number: "60 (patients) to/on/in/received aspirin", up to the next arm number.
    right_start, right_end = c.end, sentence.end
    for o in others:
        if o.start >= c.end:
            right_end = min(right_end, o.start)
    chunk = text[right_start:right_end]
    stop = re.search(r"[;:()]|,\s|\.\s|\.$|\band\b(?=\s+\d)|\bversus\b|\bvs\b|\bor\b\s+(?=\d)", chunk)
    if stop:
        right_end = right_start + stop.start()
    right_text = text[right_start:right_end]
    leads_in = re.match(r"\s*(?:\w+\s+){0,2}?(?:were\s+|was\s+)?(?:to|on|in|into|received|receiving|"
                        r"assigned|allocated|randomi[sz]ed|underwent|treated|given)\b", right_text, re.I)
    listed = c.token > 0 and lower[c.token - 1] in {"(", "and", ",", ";", "or", "versus", "vs"}
    right_words = [w for w in re.findall(r"[A-Za-z][\w+-]*", right_text) if w.lower() not in _POPULATION]
    if depth == 0 or leads_in or (listed and right_words):
        region = (right_start, right_end)
    else:
        # Inside brackets: "aspirin (n = 60)" or "(aspirin, n = 60; placebo, n = 58)".
        open_at = max(k for k in range(c.token) if lower[k] == "(")
        inner = text[toks[open_at].end:toks[c.token].start]
        m = re.search(r"(?:^|;)\s*([^;()]*?),?\s*(?:n|N)\s*=\s*$", inner)
        if m and m.group(1).strip():
            region = (toks[open_at].end + m.start(1), toks[open_at].end + m.end(1))
        else:
            region_start = sentence.start
            region_end = toks[open_at].start
            for o in others:
                if o.end <= region_end:
                    region_start = max(region_start, o.end)
            chunk = text[region_start:region_end]
            cut = max(chunk.rfind(";"), chunk.rfind(":"), chunk.rfind(", "), chunk.rfind(")"))
            if cut >= 0:
                region_start += cut + 1
            region = (region_start, region_end)
    inside = [sp for sp in spans if region[0] <= sp.start and sp.end <= region[1] + 1]
    if inside:
        name = inside[-1].text if region[1] <= c.start else inside[0].text
    else:
        words = text[region[0]:region[1]].split()
        if region[1] <= c.start and len(words) > 6:
            words = words[-6:]
        name = " ".join(words)
    name = _clean_name(name)
    if len(name) < 2 or len(name) > 120 or not re.search(r"[A-Za-z]", name) or name.lower() in _POPULATION:
        return "control group" if kind == "control" else "intervention group"
    return name


def _decode(doc: _Doc, cands: list[CountCandidate]) -> tuple[CountCandidate | None, list[CountCandidate]]:
    total = max(cands, key=lambda c: c.probabilities["total"], default=None)
    if total is not None and total.probabilities["total"] < TOTAL_THRESHOLD:
        total = None
    by_sentence: dict[int, list[CountCandidate]] = {}
    for c in cands:
        if c is total:
            continue
        arm = c.probabilities["intervention"] + c.probabilities["control"]
        if arm >= ARM_THRESHOLD:
            by_sentence.setdefault(c.sentence, []).append(c)
    if not by_sentence:
        return total, []
    # The sentence that reports the arms: the most arm probability, preferring two or more arms.
    best = max(by_sentence.values(), key=lambda cs: (len(cs) >= 2, sum(
        c.probabilities["intervention"] + c.probabilities["control"] for c in cs)))
    arms = sorted(best, key=lambda c: c.start)
    # Arms of one trial are of comparable size: a number far smaller than the largest arm in the
    # sentence is something else ("4 patients in A and 7 in B were excluded, leaving 793 and 785").
    largest = max(c.value for c in arms)
    arms = [c for c in arms if c.value >= ARM_RATIO * largest]
    # Arithmetic: an "arm" that is the sum of the other arms is the total ("1578 patients
    # (793 in A, 785 in B)"), and a number equal to the sum of the arms is a better total than
    # one that is not ("3000 were targeted, 1578 were randomised").
    if len(arms) >= 3:
        for c in arms:
            rest = [o.value for o in arms if o is not c]
            if c.value == sum(rest):
                arms = [o for o in arms if o is not c]
                break
    if len(arms) >= 2:
        arm_sum = sum(c.value for c in arms)
        if total is None or total.value != arm_sum:
            matching = [c for c in cands if c.value == arm_sum and c not in arms]
            if matching:
                total = max(matching, key=lambda c: c.probabilities["total"])
    return total, arms


_CONTROL_NAME = re.compile(
    r"\b(?:placebos?|controls?|usual|standard|conventional|routine|alone|observation|sham|no|not|"
    r"untreated|vehicle|wait(?:ing)?[- ]?list|best supportive care)\b", re.I)


def _arm_kinds(arms: Sequence[CountCandidate], names: Sequence[str]) -> list[str]:
    """Intervention or control for each arm of one sentence.

    One arm: the classifier decides. Two or more: arms whose name has a comparator word
    (placebo, control, usual or standard care, alone, no ...) are controls when some other arm's
    name has none; otherwise reports name the experimental arm first, so the first arm is the
    intervention and, of the others, the one the classifier finds likeliest is the control.
    """
    if not arms:
        return []
    if len(arms) == 1:
        c = arms[0]
        return ["control" if c.probabilities["control"] > c.probabilities["intervention"] else "intervention"]
    cues = [bool(_CONTROL_NAME.search(n)) for n in names]
    if any(cues) and not all(cues):
        return ["control" if cue else "intervention" for cue in cues]
    kinds = ["intervention"] * len(arms)
    k = max(range(1, len(arms)), key=lambda i: arms[i].probabilities["control"])
    kinds[k] = "control"
    return kinds


def describe_participants(text: str, *, model: CountModel | None = None,
                          tagger: PicoTagger | None = None) -> ParticipantsSummary:
    """Total and per-arm numbers of participants, age and sex, each with its sentence."""
    doc = analyse(text, tagger)
    model = model or CountModel.load()
    cands = count_candidates(doc)
    if cands:
        for c, p in zip(cands, model.predict(candidate_features(doc, cands)), strict=True):
            c.probabilities = p
    total, arms = _decode(doc, cands)
    groups: list[ArmCount] = []
    names = [_arm_name(doc, c, "intervention", arms) for c in arms]
    kinds = _arm_kinds(arms, names)
    for c, name, kind in zip(arms, names, kinds, strict=True):
        if name in {"intervention group", "control group"}:
            name = f"{kind} group"
        groups.append(ArmCount(name=name, type=kind, n=c.value,
                               probability=round(c.probabilities["intervention"] + c.probabilities["control"], 3),
                               evidence=_sentence_evidence(doc, c.sentence)))
    total_value = total.value if total is not None else None
    total_evidence = _sentence_evidence(doc, total.sentence) if total is not None else []
    if total_value is None and len(groups) >= 2 and all(g.n is not None for g in groups):
        total_value = sum(g.n for g in groups if g.n is not None)
        total_evidence = groups[0].evidence
    return ParticipantsSummary(total=total_value, total_evidence=total_evidence, groups=groups,
                               age=_age(doc), sex=_sex(doc))


# --------------------------------------------------------------------------------------------
# Age and sex
# --------------------------------------------------------------------------------------------

_NUM = r"(\d+(?:\.\d+)?)"
_PM = r"\s*(?:±|\+/-|\+/−|\+-)\s*"
_AGE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("mean_sd", re.compile(r"(?:mean|average)\s+(?:\(\s*SD\s*\)\s+)?age[^.;\d]{0,30}?" + _NUM + _PM + _NUM, re.I)),
    ("mean_sd", re.compile(r"aged?\s+(?:a\s+mean\s+(?:of\s+)?)?" + _NUM + _PM + _NUM + r"\s*(?:years|yrs|y)\b", re.I)),
    ("mean", re.compile(r"(?:mean|average)\s+age[^.;\d]{0,30}?" + _NUM + r"(?!\s*(?:%|\d|\.\d))", re.I)),
    ("median", re.compile(r"median\s+age[^.;\d]{0,30}?" + _NUM, re.I)),
    ("range", re.compile(r"(?:aged?|age\s+range|ages)\s*(?:of\s+|from\s+|between\s+)?" + _NUM
                         + r"\s*(?:-|–|to|and)\s*" + _NUM + r"\s*(?:years|yrs|y)\b", re.I)),
)
_SEX = re.compile(
    r"(\d+(?:\.\d+)?)\s*(%|percent)?\s*(?:\(\s*(\d+(?:\.\d+)?)\s*(%)?\s*\)\s*)?(?:were\s+|was\s+)?"
    r"(women|female|females|men|male|males|girls|boys)\b", re.I)


def _statistic(doc: _Doc, kind: str, value: float, m: re.Match[str], unit: str) -> Statistic:
    sentence = next((k for k, s in enumerate(doc.sentences) if s.start <= m.start() < s.end + 1), None)
    evidence = _sentence_evidence(doc, sentence) if sentence is not None else []
    return Statistic(kind=kind, value=value, unit=unit, text=m.group(0), evidence=evidence)


def _age(doc: _Doc) -> list[Statistic]:
    out: list[Statistic] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _AGE_PATTERNS:
        for m in pattern.finditer(doc.text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            taken.append((m.start(), m.end()))
            if kind == "mean_sd":
                out.append(_statistic(doc, "mean", float(m.group(1)), m, "years"))
                out.append(_statistic(doc, "sd", float(m.group(2)), m, "years"))
            elif kind == "range":
                out.append(_statistic(doc, "min", float(m.group(1)), m, "years"))
                out.append(_statistic(doc, "max", float(m.group(2)), m, "years"))
            else:
                out.append(_statistic(doc, kind, float(m.group(1)), m, "years"))
    return out


def _sex(doc: _Doc) -> list[Statistic]:
    out: list[Statistic] = []
    for m in _SEX.finditer(doc.text):
        first, pct, second, pct2, who = m.groups()
        sex = "female" if who.lower() in {"women", "female", "females", "girls"} else "male"
        if pct:
            out.append(_statistic(doc, f"percent_{sex}", float(first), m, "%"))
        elif second and pct2:
            out.append(_statistic(doc, f"count_{sex}", float(first), m, "participants"))
            out.append(_statistic(doc, f"percent_{sex}", float(second), m, "%"))
        elif not second and "." not in first:
            out.append(_statistic(doc, f"count_{sex}", float(first), m, "participants"))
    return out


# --------------------------------------------------------------------------------------------
# The classic ``participants`` task
# --------------------------------------------------------------------------------------------

_TOTAL_GROUP = re.compile(r"^\s*(?:total|overall|all\s+(?:participants|patients|subjects))\b", re.I)


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


_CONTROL_ROLE = re.compile(
    r"\b(?:placebos?|controls?|comparators?|comparison|usual|standard|conventional|routine|sham|"
    r"untreated|vehicle|wait(?:ing)?[- ]?list|no\s+(?:treatment|intervention|therapy)|observation|"
    r"best supportive care|dummy)\b", re.I)
_INTERVENTION_ROLE = re.compile(
    r"\b(?:interventions?|experimental|treatment|treated|active|study (?:drug|group|arm)|verum)\b", re.I)
_ROLE_PREFIX = re.compile(
    r"^\s*(?:(?:the|an?)\s+)?(?:intervention|experimental|treatment|active|control|comparator|placebo|"
    r"comparison)(?:\s+(?:group|arm))?\s*(?:\d+\s*)?[:\-–—]\s*", re.I)
_NAME_NOISE = frozenset("""the and with plus group groups arm arms patients participants subjects
                        receiving received who were was only daily dose""".split())  # noqa: SIM905
MIN_NAME_SIMILARITY = 0.5


def _role(text: str) -> str | None:
    """``control`` when the text names a comparator (placebo, usual care ...), ``intervention``
    when it names the experimental side (intervention, treatment, active ...), else ``None``."""
    if _CONTROL_ROLE.search(text):
        return "control"
    if _INTERVENTION_ROLE.search(text):
        return "intervention"
    return None


def _name_tokens(text: str) -> set[str]:
    """Content words, crudely stemmed, so "exercises" meets "exercise" and "dosing" meets "dose"."""
    out = set()
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        if len(w) < 3 or w in _NAME_NOISE:
            continue
        out.add(re.sub(r"(?:ing|ed|es|s)$", "", w) if len(w) > 5 else w)
    return out


def _name_similarity(title: str, arm_name: str) -> float:
    """How well a requested group's title names an arm, 0..1.

    The word overlap over the smaller word set (crudely stemmed words), scaled down a
    little when the two sets differ in size so "tamoxifen alone" prefers the arm "tamoxifen
    alone" to "surgery plus tamoxifen"; or rapidfuzz's ratio of the sorted normalised words
    when that is higher and at least 0.8 (spelling variants). Titles lose their role prefix
    first ("Intervention: aspirin" -> "aspirin").
    """
    from rapidfuzz import fuzz

    title = _ROLE_PREFIX.sub("", title)
    a, b = _name_tokens(title), _name_tokens(arm_name)
    if not a or not b:
        return 0.0
    shared = len(a & b)
    overlap = shared / min(len(a), len(b))
    jaccard = shared / (len(a) + len(b) - shared)
    fuzzy = fuzz.ratio(" ".join(sorted(a)), " ".join(sorted(b))) / 100
    return max(overlap * (0.75 + 0.25 * jaccard), fuzzy if fuzzy >= 0.8 else 0.0)


def _assign_groups(groups: Sequence[tuple[str, str]], arms: Sequence[ArmCount]) -> list[tuple[int | None, str]]:
    """Map each requested group ``(title, description)`` to one arm (an index into ``arms``) and
    say how: ``name`` (the title names the arm), ``role`` (control vs intervention words),
    ``elimination`` (the one group and arm left) or ``order`` (order of mention, last resort).

    Arms are used once. Names first, by the best one-to-one assignment of the similarities
    above :data:`MIN_NAME_SIMILARITY`; then roles, when exactly one unassigned arm has the
    group's role; then elimination; then the remaining groups take the remaining arms in the
    order the paper names them, when as many groups as arms are left.
    """
    from itertools import permutations

    result: list[tuple[int | None, str]] = [(None, "")] * len(groups)
    if not arms or not groups:
        return result
    sims = [[_name_similarity(f"{title} {description}".strip(), arm.name) for arm in arms]
            for title, description in groups]
    # The best one-to-one assignment by name (few groups and arms: exhaustive search).
    gi = list(range(len(groups)))
    best_pairs: list[tuple[int, int]] = []
    best_score = 0.0
    if len(groups) <= 4 and len(arms) <= 6:
        slots: list[int | None] = [*range(len(arms)), *([None] * len(groups))]
        # dict.fromkeys: unique and in a fixed order, so ties go to the earlier arm.
        for perm in dict.fromkeys(permutations(slots, len(groups))):
            pairs = [(g, a) for g, a in zip(gi, perm, strict=True)
                     if a is not None and sims[g][a] >= MIN_NAME_SIMILARITY]
            score = sum(sims[g][a] for g, a in pairs)
            if score > best_score + 1e-9:
                best_pairs, best_score = pairs, score
    else:  # greedy for unusually many groups or arms
        taken: set[int] = set()
        for g in gi:
            a = max((a for a in range(len(arms)) if a not in taken), key=lambda a: sims[g][a], default=None)
            if a is not None and sims[g][a] >= MIN_NAME_SIMILARITY:
                best_pairs.append((g, a))
                taken.add(a)
    for g, a in best_pairs:
        result[g] = (a, "name")
    used = {a for a, _how in result if a is not None}

    def free_arms() -> list[int]:
        return [a for a in range(len(arms)) if a not in used]

    for g, (title, description) in enumerate(groups):
        if result[g][0] is not None:
            continue
        role = _role(title) or _role(description)
        if role is None:
            continue
        same = [a for a in free_arms() if arms[a].type == role]
        if len(same) == 1:
            result[g] = (same[0], "role")
            used.add(same[0])
    left = [g for g in gi if result[g][0] is None]
    free = free_arms()
    if len(left) == 1 and len(free) == 1:
        result[left[0]] = (free[0], "elimination")
    elif left and len(left) == len(free):
        for g, a in zip(left, free, strict=True):
            result[g] = (a, "order")
    return result


def _measure_kind(measure: str) -> str:
    m = measure.lower()
    if "age" in m.split() or m.startswith("age"):
        return "age"
    if re.search(r"\b(sex|gender|female|male|women|men)\b", m):
        return "sex"
    if re.search(r"\b(number|count|participants|analy[sz]ed|enrolled|randomi[sz]ed)\b", m):
        return "count"
    return "other"


def _pick(stats: list[Statistic], kinds: Sequence[str]) -> Statistic | None:
    for kind in kinds:
        for s in stats:
            if s.kind == kind:
                return s
    return None


def _baseline_value(doc_text: str, measure: str, group: str | None) -> tuple[str, Evidence] | None:
    """A value of a named baseline measure: the first number after the measure's name in the
    sentence that names it (and the group, when one is asked for)."""
    from leads.extract.pico import split_sentences

    name = re.escape(measure.split(":")[0].strip())
    pattern = re.compile(name + r"[^.;\d]{0,40}?(\d+(?:\.\d+)?)", re.I)
    for s in split_sentences(doc_text):
        if group and not (_words(group) & _words(s.text)):
            continue
        m = pattern.search(s.text)
        if m:
            return m.group(1), Evidence(quote=s.text, start=s.start, end=s.end)
    return None


@implements("participants", version=MODEL_VERSION)
def classic_participants(inp: ParticipantsInput) -> ParticipantsOutput:
    """A baseline measure per requested group, from :func:`describe_participants`.

    Counts of participants come from the total and the arms; ``Age`` from the age statistics
    (mean, else median, as the param type asks); ``Sex`` from the counts or percentages of women
    or men; any other measure from the sentence that names it. A group maps to the whole sample
    when its title is "Total"/"Overall", else to an arm of the paper (:func:`_assign_groups`:
    by name, then control/intervention role, then elimination, then order of mention).
    """
    summary = describe_participants(inp.text)
    kind = _measure_kind(inp.measure)
    values: list[GroupValue] = []
    totals = [bool(_TOTAL_GROUP.match(g.title)) or len(inp.groups) == 1 for g in inp.groups]
    arm_groups = [g for g, total in zip(inp.groups, totals, strict=True) if not total]
    mapping = dict(zip((g.id for g in arm_groups),
                       _assign_groups([(g.title, g.description) for g in arm_groups], summary.groups), strict=True))
    for group, is_total in zip(inp.groups, totals, strict=True):
        arm_index, how = mapping.get(group.id, (None, ""))
        arm = summary.groups[arm_index] if arm_index is not None else None
        value: str | None = None
        number: float | None = None
        evidence: list[Evidence] = []
        note = ""
        if kind == "count":
            if is_total and summary.total is not None:
                number, evidence = float(summary.total), summary.total_evidence
            elif arm is not None and arm.n is not None:
                number, evidence, note = float(arm.n), arm.evidence, f"arm {arm.name!r} (matched by {how})"
        elif kind == "age" and is_total:
            wanted: tuple[str, ...] = ("median", "mean") if inp.param_type == "MEDIAN" else ("mean", "median")
            stat = _pick(summary.age, wanted)
            if stat is not None:
                number, evidence, note = stat.value, stat.evidence, stat.text
        elif kind == "sex" and is_total:
            female = "female" in inp.measure.lower() or "women" in inp.measure.lower()
            sex = "female" if female or "male" not in inp.measure.lower() else "male"
            wanted = (f"percent_{sex}",) if inp.param_type == "PERCENT" else (f"count_{sex}", f"percent_{sex}")
            stat = _pick(summary.sex, wanted)
            if stat is not None:
                number, evidence, note = stat.value, stat.evidence, stat.text
        elif kind == "other":
            found = _baseline_value(inp.text, inp.measure, None if is_total else group.title)
            if found is not None:
                value, ev = found
                number, evidence = float(value), [ev]
        if number is not None:
            value = str(int(number)) if float(number).is_integer() else str(number)
        values.append(GroupValue(group_id=group.id, value=value, number=number, note=note,
                                 evidence=evidence))
    return ParticipantsOutput(measure=inp.measure, param_type=inp.param_type, unit=inp.unit, values=values)
