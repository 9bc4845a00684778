"""A result-sentence model trained on RCT-ART: which arm each reported value belongs to.

RCT-ART (Whitton & Hunter 2023) annotates result sentences of RCT abstracts with spans (INTV: an
arm, OC: an outcome, MEAS: a measurement) and relations (A1_RES / A2_RES: arm → its value). Two
small models are trained from it (``python -m leads.extract.train_results``) and shipped:

- ``models/results_ner.crfsuite``: a CRF (python-crfsuite) tagging tokens B/I-INTV, B/I-OC,
  B/I-MEAS, with lexical and shape features;
- ``models/results_relation.json``: a logistic regression over (arm span, value span) pairs with
  positional features (distance, order, spans in between, "respectively", connecting words),
  stored as plain weights, so loading needs no pickle.

At run time :meth:`ResultSentenceModel.assign` tags a sentence, links each value (a statistic
found by :mod:`leads.extract.numbers` inside a MEAS span) to the arm span with the highest link
probability, and maps that span to an arm the reviewer asked for (or to another arm of the paper).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "MODEL_DIR",
    "NER_FILE",
    "RELATION_FILE",
    "ResultSentenceModel",
    "Span",
    "bio_to_spans",
    "pair_features",
    "token_features",
    "tokenize",
]

NER_FILE = "results_ner.crfsuite"
RELATION_FILE = "results_relation.json"
MODEL_DIR = "leads.extract.models"
LINK_THRESHOLD = 0.5

_TOKEN = re.compile(
    r"\d+(?:[.,\u00b7]\d+)*|[A-Za-z\u00c0-\u024f]+(?:['\u2019\-][A-Za-z\u00c0-\u024f0-9]+)*|\u00b1|\+\s?/\s?-|"
    r"[^\sA-Za-z\d]")


@dataclass(frozen=True)
class Span:
    label: str
    start: int  # character offsets
    end: int
    first: int  # token indices (inclusive, exclusive)
    last: int


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """Words, numbers (with their decimals), ``±``/``+/-`` and single punctuation marks."""
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _shape(word: str) -> str:
    shape = re.sub(r"[A-Z]", "X", word)
    shape = re.sub(r"[a-z]", "x", shape)
    shape = re.sub(r"\d", "d", shape)
    return re.sub(r"(.)\1{2,}", r"\1\1", shape)


_CUES = frozenset({"group", "groups", "arm", "arms", "placebo", "control", "patients", "in", "with", "for",
                   "vs", "versus", "compared", "than", "respectively", "and", "or", "of", "receiving", "mean",
                   "median", "rate", "rates", "%", "percent", "p", "ci", "hr", "rr"})


def token_features(tokens: Sequence[str]) -> list[list[str]]:
    """CRF features of each token: its form, shape, affixes and its neighbours'."""
    out: list[list[str]] = []
    for i, word in enumerate(tokens):
        low = word.lower()
        f = [f"w={low}", f"shape={_shape(word)}", f"suf3={low[-3:]}", f"pre3={low[:3]}",
             f"num={word.replace('.', '').replace(',', '').isdigit()}", f"upper={word.isupper()}",
             f"title={word[:1].isupper()}", f"len={min(len(word), 8)}"]
        if low in _CUES:
            f.append(f"cue={low}")
        for k in (-2, -1, 1, 2):
            j = i + k
            if 0 <= j < len(tokens):
                other = tokens[j].lower()
                f.append(f"w{k:+d}={other}")
                f.append(f"shape{k:+d}={_shape(tokens[j])}")
            else:
                f.append(f"w{k:+d}=<edge>")
        if i == 0:
            f.append("first")
        out.append(f)
    return out


def bio_to_spans(tags: Sequence[str], tokens: Sequence[tuple[str, int, int]]) -> list[Span]:
    spans: list[Span] = []
    current: list[int] = []
    label = ""
    for i, tag in enumerate([*tags, "O"]):
        inside = tag.startswith("I-") and tag[2:] == label and current
        if not inside and current:
            spans.append(Span(label, tokens[current[0]][1], tokens[current[-1]][2], current[0], current[-1] + 1))
            current = []
        if tag.startswith("B-") or (tag.startswith("I-") and not inside):
            label = tag[2:]
            current = [i]
        elif inside:
            current.append(i)
    return spans


def pair_features(tokens: Sequence[tuple[str, int, int]], spans: Sequence[Span], arm: Span,
                  value: Span) -> dict[str, float]:
    """Features of linking ``arm`` (INTV) to ``value`` (MEAS) within one sentence."""
    words = [t[0].lower() for t in tokens]
    arms = sorted((s for s in spans if s.label == "INTV"), key=lambda s: s.first)
    values = sorted((s for s in spans if s.label == "MEAS"), key=lambda s: s.first)
    before = arm.last <= value.first
    lo, hi = (arm.last, value.first) if before else (value.last, arm.first)
    between = words[lo:hi]
    arms_between = sum(1 for s in arms if lo <= s.first and s.last <= hi)
    values_between = sum(1 for s in values if lo <= s.first and s.last <= hi)
    distance = max(0, hi - lo)
    respectively = "respectively" in words
    arm_rank = arms.index(arm) if arm in arms else -1
    value_rank = values.index(value) if value in values else -1
    nearest_before = max((s for s in arms if s.last <= value.first), key=lambda s: s.last, default=None)
    nearest_after = min((s for s in arms if s.first >= value.last), key=lambda s: s.first, default=None)
    f = {
        "bias": 1.0,
        "arm_before": float(before),
        "log_distance": math.log1p(distance),
        "adjacent": float(distance <= 2),
        "arms_between": float(arms_between),
        "values_between": float(values_between),
        "semicolon_between": float(";" in between),
        "paren_between": float("(" in between or ")" in between),
        "respectively": float(respectively),
        "respectively_same_rank": float(respectively and arm_rank == value_rank),
        "same_rank": float(arm_rank == value_rank),
        "counts_equal": float(len(arms) == len(values)),
        "nearest_before": float(nearest_before is not None and nearest_before == arm),
        "nearest_after": float(nearest_after is not None and nearest_after == arm),
        "in_between": float(any(w in ("in", "with", "for", "among", "on", "receiving") for w in between)),
        "compare_between": float(any(w in ("vs", "versus", "compared", "than", "whereas", "while") for w in between)),
        "and_between": float("and" in between),
    }
    if not before:
        f["after_in"] = float(bool(between) and between[-1] in ("in", "with", "for", "among", "on", "the"))
    return f


class ResultSentenceModel:
    """The shipped CRF + link model (see the module docstring)."""

    def __init__(self, tagger: Any, weights: dict[str, float], meta: dict[str, Any]) -> None:
        self._tagger = tagger
        self.weights = weights
        self.meta = meta

    @classmethod
    def load(cls, directory: str | Path | None = None) -> ResultSentenceModel:
        """Load from ``directory`` or the files shipped in ``leads/extract/models``.

        Raises ``FileNotFoundError`` when they are missing (build them with
        ``python -m leads.extract.train_results``).
        """
        import pycrfsuite

        if directory is None:
            base = resources.files(MODEL_DIR)
            ner = Path(str(base.joinpath(NER_FILE)))
            rel = Path(str(base.joinpath(RELATION_FILE)))
        else:
            ner = Path(directory) / NER_FILE
            rel = Path(directory) / RELATION_FILE
        if not ner.is_file() or not rel.is_file():
            raise FileNotFoundError(f"result-sentence model files not found ({ner}, {rel}); "
                                    "build them with: python -m leads.extract.train_results")
        tagger = pycrfsuite.Tagger()
        tagger.open(str(ner))
        data = json.loads(rel.read_text(encoding="utf-8"))
        return cls(tagger, data["weights"], data.get("meta", {}))

    def tag(self, text: str) -> tuple[list[tuple[str, int, int]], list[Span]]:
        tokens = tokenize(text)
        if not tokens:
            return tokens, []
        tags = self._tagger.tag(token_features([t[0] for t in tokens]))
        return tokens, bio_to_spans(tags, tokens)

    def link_probability(self, tokens: Sequence[tuple[str, int, int]], spans: Sequence[Span], arm: Span,
                         value: Span) -> float:
        z = sum(self.weights.get(k, 0.0) * v for k, v in pair_features(tokens, spans, arm, value).items())
        return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))

    def assign(self, text: str, stats: Sequence[Any], mentions: Sequence[Any], matcher: Any,
               other_arm: str) -> dict[int, tuple[str, int, float]]:
        """Link statistics to arms: ``{id(stat): (arm id, mention offset, probability)}``.

        Arm spans are the CRF's INTV spans and the rule-found mentions (names, role words); a
        span maps to the arm the mention or the matcher names, else to ``other_arm``. Only
        statistics inside a MEAS span are linked; the rest is left to the position rules.
        """
        tokens, spans = self.tag(text)
        if not tokens:
            return {}

        def token_span(label: str, start: int, end: int) -> Span | None:
            first = next((i for i, t in enumerate(tokens) if t[2] > start), None)
            last = next((i for i in range(len(tokens) - 1, -1, -1) if tokens[i][1] < end), None)
            if first is None or last is None or last < first:
                return None
            return Span(label, start, end, first, last + 1)

        arm_spans: list[tuple[Span, str]] = []
        for m in mentions:
            s = token_span("INTV", m.start, m.end)
            if s is not None:
                arm_spans.append((s, m.arm))
        for s in spans:
            if s.label != "INTV" or any(s.start < a.end and a.start < s.end for a, _ in arm_spans):
                continue
            arm, _ = matcher.best(text[s.start:s.end], threshold=0.34)
            arm_spans.append((s, arm if arm is not None else other_arm))
        if not arm_spans:
            return {}
        all_spans = [s for s in spans if s.label != "INTV"] + [a for a, _ in arm_spans]
        out: dict[int, tuple[str, int, float]] = {}
        for stat in stats:
            meas = next((s for s in spans if (s.label == "MEAS" and s.start <= stat.start < s.end + 1)
                         or (s.label == "MEAS" and stat.start <= s.start < stat.end)), None)
            if meas is None:
                continue
            best: tuple[float, str, int] | None = None
            for span, arm_id in arm_spans:
                p = self.link_probability(tokens, all_spans, span, meas)
                if best is None or p > best[0]:
                    best = (p, arm_id, span.start)
            if best is not None and best[0] >= LINK_THRESHOLD:
                out[id(stat)] = (best[1], best[2], best[0])
        return out
