"""Matching a query (an arm name, an outcome) against the words of a paper.

Trial reports rarely repeat the reviewer's wording: an arm asked for as "person-centred general
practitioners (GP) consultations" is the "Intervention" column, "treatment as usual (TAU)" is
"TAU", "phase I externship program" is the "EP group" that a table footnote defines. This module
gives the pieces the results extractor scores with:

- :func:`tokens`: content words, lower-cased, lightly stemmed, with negation marked
  (``stentless`` and ``without stent`` both give ``stent`` with negative polarity);
- :func:`abbreviations`: ``long form (ABBR)``, ``ABBR, long form;`` and ``ABBR = long form``
  definitions found in a text;
- :class:`ArmMatcher`: how well a table header, row label or phrase names each arm, using the
  arm's aliases (its abbreviation, the paper's definitions, generic role words such as
  "control" or "placebo" as a weak fallback, pre/post wording for single-group designs);
- :class:`OutcomeMatcher`: how well a phrase names the outcome, weighting rare words (IDF over
  the paper) and forgiving spelling variants ("competency"/"competence", "reliving"/"relieving").
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz

__all__ = [
    "ArmMatcher",
    "ArmQuery",
    "OutcomeMatcher",
    "Token",
    "abbreviations",
    "content_tokens",
    "tokens",
]

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:['\u2019][a-z]+)?|\d+(?:\.\d+)?")
STOPWORDS = frozenset(["a", "an", "the", "of", "in", "on", "at", "to", "for", "with", "by", "from", "and", "or", "vs", "versus", "than", "as", "into", "per", "via", "is", "are", "was", "were", "be", "been", "being", "has", "have", "had", "do", "does", "did", "this", "that", "these", "those", "their", "its", "who", "whom", "which", "what", "when", "where", "while", "whereas", "after", "before", "during", "between", "among", "within", "group", "groups", "arm", "arms", "patient", "patients", "participant", "participants", "subject", "subjects", "people", "treated", "treatment", "receiving", "received", "receive", "given", "giving", "those", "cases", "case", "total", "overall", "all", "each", "any", "both", "either", "other", "free", "less", "controlled", "uncontrolled", "randomized", "randomised", "randomly", "blind", "blinded", "double", "single", "open", "label"])
# Words that carry no outcome-specific meaning in a results table or sentence.
OUTCOME_STOPWORDS = STOPWORDS | frozenset(["mean", "means", "score", "scores", "level", "levels", "value", "values", "number", "numbers", "rate", "rates", "change", "changes", "measure", "measures", "measured", "outcome", "outcomes", "effect", "effects", "data", "result", "results", "difference", "differences", "increase", "increased", "decrease", "decreased", "reduction", "reduced", "improvement", "improved"])
_NEGATORS = frozenset({"without", "no", "non", "not", "free", "less", "absence", "absent"})
_NEG_SUFFIXES = ("less",)
_NEG_PREFIX = re.compile(r"^(?:non|un)-?(?=[a-z]{3,})")

INTERVENTION_ROLE = frozenset({"intervention", "experimental", "treatment", "active", "verum", "tx", "ig"})
COMPARATOR_ROLE = frozenset({"control", "controls", "placebo", "usual", "tau", "standard", "comparison",
                             "comparator", "sham", "conventional", "routine", "reference", "cg", "waitlist",
                             "wait", "untreated", "vehicle"})
PRE_WORDS = frozenset({"pre", "before", "baseline", "prior", "t0", "pretest", "preintervention",
                       "pretreatment", "entry", "admission", "initial"})
POST_WORDS = frozenset({"post", "after", "following", "end", "t1", "posttest", "postintervention",
                        "posttreatment", "final", "followup", "completion"})


@dataclass(frozen=True)
class Token:
    """A content word: its stem, its surface form, and whether a negation governs it."""

    stem: str
    surface: str
    negated: bool = False


@functools.lru_cache(maxsize=100_000)
def _stem(word: str) -> str:
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ational", "ation", "ments", "ment", "ing", "ness", "ity", "ed"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            return w[: -len(suffix)]
    return w


def tokens(text: str, *, stopwords: frozenset[str] = STOPWORDS) -> list[Token]:
    """Content words of ``text`` with negation polarity (see :func:`_tokens`)."""
    return list(_tokens(text, stopwords))


@functools.lru_cache(maxsize=200_000)
def _tokens(text: str, stopwords: frozenset[str]) -> tuple[Token, ...]:
    """Content words of ``text`` with negation polarity.

    A word is negated when it follows ``without``/``no``/``non``/``not`` within two words, when it
    ends in ``-less`` (``stentless`` → ``stent``) or is followed by ``free`` (``stent free``), or
    when it carries a ``non-``/``un-`` prefix.
    """
    raw = [m.group(0) for m in _WORD.finditer(text.replace("-", " - "))]
    out: list[Token] = []
    negate_window = 0
    for i, word in enumerate(raw):
        low = word.lower()
        if low == "-":
            continue
        if low in _NEGATORS and low not in ("less", "free"):
            negate_window = 2
            continue
        negated = negate_window > 0
        negate_window = max(0, negate_window - 1)
        base = low
        if base.endswith(_NEG_SUFFIXES) and len(base) > 6:
            base = base[:-4]
            negated = True
        prefix = _NEG_PREFIX.match(base)
        if prefix and base[prefix.end():] not in ("ion", "it", "ique", "iform"):
            base = base[prefix.end():]
            negated = True
        nxt = raw[i + 1].lower() if i + 1 < len(raw) else ""
        nxt2 = raw[i + 2].lower() if i + 2 < len(raw) else ""
        if nxt == "free" or (nxt == "-" and nxt2 == "free"):
            negated = True
        # Single capitals and digits name units and phases ("unit A", "phase II" → "ii" kept).
        identifier = len(word) == 1 and (word.isupper() or word.isdigit())
        if (base in stopwords or low in stopwords) and not identifier:
            continue
        if len(base) < 2 and not identifier:
            continue
        out.append(Token(_stem(base), word, negated))
    return tuple(out)


def content_tokens(text: str) -> list[str]:
    return [t.stem for t in tokens(text)]


_PAREN_ABBR = re.compile(r"([A-Za-z][\w'\u2019\- ,/&]{2,80}?)\s*\(\s*([A-Za-z][A-Za-z0-9\-/&]{0,12}[A-Za-z0-9])\s*[);,]")
_COMMA_DEF = re.compile(r"(?:^|[;.]\s*|\n)\s*([A-Z][A-Za-z0-9\-/&]{0,12}[A-Za-z0-9]?)(?:\s+[Gg]roup)?\s*[,:=]\s*"
                        r"(?:the\s+)?([a-z][\w'\u2019\- /&]{3,80}?)\s*(?=[;.]|$)", re.MULTILINE)


def _initials_match(abbr: str, words: list[str]) -> int:
    """How many trailing words of ``words`` the letters of ``abbr`` start (0 if they do not fit).

    ``TEAE`` fits "treatment-emergent adverse events" (split at the hyphen); stop words inside
    the long form ("quality of life", QoL) are passed over.
    """
    letters = [c for c in abbr.lower() if c.isalpha()]
    if len(letters) < 2:
        return 0
    i = len(letters) - 1
    used = 0
    for word in reversed(words):
        if i < 0:
            break
        w = word.lower()
        if not w or not w[0].isalpha():
            return 0
        if w[0] == letters[i]:
            i -= 1
            used += 1
        elif w in STOPWORDS and used:
            used += 1
        else:
            return 0
    return used if i < 0 else 0


def abbreviations(text: str) -> dict[str, str]:
    """Abbreviation definitions in ``text``: ``{"TEAEs": "treatment-emergent adverse events", ...}``.

    Finds ``long form (ABBR)`` where the letters of ABBR start the last words of the long form,
    and footnote-style ``ABBR, long form;`` / ``ABBR = long form`` definitions.
    """
    found: dict[str, str] = {}
    for m in _PAREN_ABBR.finditer(text):
        abbr = m.group(2)
        if abbr.lower() in STOPWORDS or abbr.isdigit() or len(abbr) > 10:
            continue
        if not any(c.isupper() for c in abbr):
            continue
        words = re.split(r"[\s\-/]+", m.group(1).strip())
        used = _initials_match(abbr.rstrip("s"), words)
        if used:
            found.setdefault(abbr, " ".join(words[-used:]))
    for m in _COMMA_DEF.finditer(text):
        abbr, long_form = m.group(1), m.group(2).strip()
        if len(abbr) < 2 or (not abbr.isupper() and not re.search(r"[A-Z].*[A-Z]", abbr)):
            continue
        found.setdefault(abbr, long_form)
    return found


@dataclass
class ArmQuery:
    """One arm asked for: its id (e.g. ``intervention``), its title, and its role."""

    id: str
    title: str
    role: str = "other"  # intervention | comparator | other
    aliases: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [self.title, *self.aliases]


def _strip_parens(text: str) -> str:
    return re.sub(r"\s*\([^)]*\)", "", text).strip()


def _parenthetical(text: str) -> list[str]:
    return [p.strip() for p in re.findall(r"\(([^)]{1,40})\)", text)]


class ArmMatcher:
    """Scores how well a piece of text names each arm (0 = not at all, 1 = by name)."""

    def __init__(self, arms: Sequence[ArmQuery], document_text: str = "",
                 abbreviation_map: dict[str, str] | None = None) -> None:
        self.arms = list(arms)
        self.abbreviations = abbreviation_map if abbreviation_map is not None else abbreviations(document_text)
        self._aliases: dict[str, list[str]] = {}
        for arm in self.arms:
            names = {arm.title, _strip_parens(arm.title), *arm.aliases}
            for inner in _parenthetical(arm.title):
                if len(inner) >= 2:
                    names.add(inner)
            title_tokens = {t.stem for t in tokens(arm.title)}
            for abbr, long_form in self.abbreviations.items():
                long_tokens = {t.stem for t in tokens(long_form)}
                if abbr in arm.title or (long_tokens and long_tokens <= title_tokens):
                    names.add(abbr)
                    names.add(long_form)
            self._aliases[arm.id] = sorted((n for n in names if n and len(n) >= 2), key=len, reverse=True)
        self._tokens = {arm.id: tokens(arm.title) for arm in self.arms}
        # Names of groups the paper has besides the arms asked for (a third arm), so that their
        # numbers are not read as a neighbouring arm's.
        self.other_names: list[str] = []
        self._cache: dict[tuple[str, str], float] = {}
        # A word only one arm has (e.g. "water" vs "juice") identifies it; words all arms share
        # ("surveillance", "program", "phase") count for less.
        counts = Counter(stem for arm in self.arms for stem in {t.stem for t in self._tokens[arm.id]})
        self._weights = {arm.id: {t.stem: (1.0 if counts[t.stem] == 1 or len(self.arms) == 1 else 0.3)
                                  for t in self._tokens[arm.id]} for arm in self.arms}
        self._time = {arm.id: _time_role(arm.title) for arm in self.arms}

    def aliases(self, arm_id: str) -> list[str]:
        return list(self._aliases[arm_id])

    def add_alias(self, arm_id: str, alias: str) -> None:
        if alias and alias not in self._aliases[arm_id]:
            self._aliases[arm_id].append(alias)
            self._aliases[arm_id].sort(key=len, reverse=True)
            self._cache.clear()

    @property
    def single_group(self) -> bool:
        """Whether the arms are time points of one group ("pre-Yoga" vs "post-Yoga")."""
        roles = {self._time[a.id] for a in self.arms}
        return len(self.arms) >= 2 and roles == {"pre", "post"}

    def score(self, arm_id: str, text: str) -> float:
        """Name match (1.0), word overlap (up to 0.9), role word (0.35) or nothing (0)."""
        key = (arm_id, text)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._score(arm_id, text)
        return cached

    def _score(self, arm_id: str, text: str) -> float:
        if not text or not text.strip():
            return 0.0
        low = text.lower()
        label_tokens = tokens(text)
        best = 0.0
        for alias in self._aliases[arm_id]:
            pattern = r"(?<![A-Za-z0-9])" + re.escape(alias.lower()) + r"(?![A-Za-z0-9])"
            m = re.search(pattern, low)
            if m and not _negated_before(low, m.start()):
                best = max(best, 1.0 if len(alias) >= 3 or alias.isupper() else 0.8)
        query = self._tokens[arm_id]
        label_content = [t for t in label_tokens if not _uninformative(t)]
        if query and label_content:
            weights = self._weights[arm_id]
            q_stems = {t.stem: t.negated for t in query}
            l_stems = {t.stem: t.negated for t in label_content}
            shared = [s for s in q_stems if s in l_stems or any(_similar(s, o) for o in l_stems)]
            if shared and any(weights[s] >= 1.0 for s in shared):
                polarity_clash = any(q_stems[s] != l_stems.get(s, q_stems[s]) for s in shared)
                coverage = sum(weights[s] for s in shared) / sum(weights[s] for s in q_stems)
                matched_label = [s for s in l_stems if s in q_stems or any(_similar(s, q) for q in q_stems)]
                precision = len(matched_label) / len(l_stems)
                overlap = 0.9 * (0.6 * coverage + 0.4 * precision)
                if polarity_clash:
                    overlap *= 0.1
                best = max(best, overlap)
        if best < 0.35:
            role_score = self._role_score(arm_id, label_tokens)
            best = max(best, role_score)
        return best

    def _role_score(self, arm_id: str, label_tokens: list[Token]) -> float:
        arm = next(a for a in self.arms if a.id == arm_id)
        stems = {t.surface.lower() for t in label_tokens} | {t.stem for t in label_tokens}
        time = self._time[arm_id]
        if time:
            label_time = _time_role(" ".join(t.surface for t in label_tokens))
            if label_time == time:
                return 0.5
        if arm.role == "intervention" and stems & INTERVENTION_ROLE and not stems & COMPARATOR_ROLE:
            return 0.35
        if arm.role == "comparator" and stems & COMPARATOR_ROLE and not stems & INTERVENTION_ROLE:
            return 0.35
        return 0.0

    def best(self, text: str, threshold: float = 0.3) -> tuple[str | None, float]:
        """The arm ``text`` names best, if any scores at least ``threshold`` and no other ties it."""
        scores = sorted(((self.score(a.id, text), a.id) for a in self.arms), reverse=True)
        if not scores or scores[0][0] < threshold:
            return None, 0.0
        if len(scores) > 1 and scores[1][0] >= scores[0][0] - 1e-9:
            return None, scores[0][0]
        return scores[0][1], scores[0][0]

    def mentions(self, text: str) -> list[tuple[int, int, str, float]]:
        """Where arms are named in ``text``: ``(start, end, arm_id, score)``, by alias or role word."""
        found: list[tuple[int, int, str, float]] = []
        low = text.lower()
        for arm in self.arms:
            for alias in self._aliases[arm.id]:
                pattern = r"(?<![A-Za-z0-9])" + re.escape(alias.lower()) + r"(?![A-Za-z0-9])"
                for m in re.finditer(pattern, low):
                    if not _negated_before(low, m.start()):
                        found.append((m.start(), m.end(), arm.id, 1.0))
        # Role words ("intervention group", "control group") for arms without a name match.
        named = {f[2] for f in found}
        for arm in self.arms:
            if arm.id in named:
                continue
            words = INTERVENTION_ROLE if arm.role == "intervention" else COMPARATOR_ROLE if arm.role == "comparator" else set()
            for word in sorted(words, key=len, reverse=True):
                if len(word) < 4 and word not in ("tau",):
                    continue
                for m in re.finditer(r"(?<![A-Za-z])" + re.escape(word) + r"s?(?![A-Za-z])", low):
                    found.append((m.start(), m.end(), arm.id, 0.5))
        # Keep the longest of overlapping mentions.
        found.sort(key=lambda f: (-(f[1] - f[0]), -f[3]))
        kept: list[tuple[int, int, str, float]] = []
        for f in found:
            if not any(f[0] < k[1] and k[0] < f[1] for k in kept):
                kept.append(f)
        return sorted(kept)


_STAT_WORDS = frozenset({"n", "mean", "sd", "se", "sem", "median", "iqr", "range", "no", "number", "percent",
                         "x", "\u03c7"})


def _uninformative(token: Token) -> bool:
    """Numbers and statistic words in a header ("n = 30", "Mean ± SD") say nothing about the arm."""
    return token.stem.replace(".", "").isdigit() or token.stem in _STAT_WORDS


def _negated_before(low: str, start: int) -> bool:
    before = low[max(0, start - 12):start]
    return bool(re.search(r"\b(?:without|no|non-?)\s*$", before))


def _similar(a: str, b: str) -> bool:
    if a == b:
        return True
    if len(a) >= 5 and len(b) >= 5 and (a[:5] == b[:5] and abs(len(a) - len(b)) <= 4):
        return True
    return len(a) >= 6 and len(b) >= 6 and fuzz.ratio(a, b) >= 86


def _time_role(text: str) -> str | None:
    words = {w.lower() for w in re.findall(r"[A-Za-z0-9]+", text)}
    joined = text.lower()
    if words & PRE_WORDS or re.search(r"\bpre[\s-]", joined):
        return "pre"
    if words & POST_WORDS or re.search(r"\bpost[\s-]", joined) or re.search(r"follow[\s-]?up", joined):
        return "post"
    return None


class OutcomeMatcher:
    """Scores how well a phrase names the outcome, with word weights learnt from the paper."""

    def __init__(self, outcome: str, document_text: str = "",
                 abbreviation_map: dict[str, str] | None = None) -> None:
        self.outcome = outcome
        self.abbreviations = abbreviation_map if abbreviation_map is not None else abbreviations(document_text)
        expanded = outcome
        for abbr, long_form in self.abbreviations.items():
            if re.search(r"(?<![A-Za-z])" + re.escape(abbr) + r"(?![A-Za-z])", outcome):
                expanded += " " + long_form
        self.query = _unique(t.stem for t in tokens(expanded, stopwords=OUTCOME_STOPWORDS))
        if not self.query:
            self.query = _unique(t.stem for t in tokens(outcome))
        self._doc_counts = Counter(t.stem for t in tokens(document_text)) if document_text else Counter()
        self._doc_total = max(1, sum(self._doc_counts.values()))
        self._abbr_for: dict[str, str] = {}
        for abbr, long_form in self.abbreviations.items():
            self._abbr_for[abbr.lower()] = long_form
        self.initialisms = _initialisms(outcome)
        self._scores: dict[str, float] = {}

    def weight(self, stem: str) -> float:
        count = self._doc_counts.get(stem, 0)
        return 1.0 + math.log(1 + self._doc_total / (1 + count)) / 4

    def expand(self, text: str) -> str:
        """``text`` with the paper's abbreviations written out after them."""
        extra = []
        for word in re.findall(r"[A-Za-z][A-Za-z0-9\-]+", text):
            long_form = self._abbr_for.get(word.lower())
            if long_form and word.lower() not in self.outcome.lower():
                extra.append(long_form)
        return text + (" " + " ".join(extra) if extra else "")

    def score(self, text: str) -> float:
        """Weighted share of the outcome's words found in ``text`` (0..1); the outcome's
        initialism ("BMI" for "Body mass index") counts as the words it stands for."""
        cached = self._scores.get(text)
        if cached is None:
            cached = self._scores[text] = self._score(text)
        return cached

    def _score(self, text: str) -> float:
        if not text or not self.query:
            return 0.0
        if self.initialisms and any(w.lower() in self.initialisms for w in re.findall(r"[A-Za-z]{2,8}", text)):
            return 0.95
        found = {t.stem for t in tokens(self.expand(text), stopwords=OUTCOME_STOPWORDS)}
        found |= {t.stem for t in tokens(text)}
        total = sum(self.weight(q) for q in self.query)
        got = 0.0
        for q in self.query:
            if q in found:
                got += self.weight(q)
            elif any(_similar(q, f) for f in found):
                got += 0.8 * self.weight(q)
        return got / total if total else 0.0

    def precision(self, text: str) -> float:
        """Share of ``text``'s content words that belong to the outcome (penalises long labels)."""
        words = [t.stem for t in tokens(self.expand(text), stopwords=OUTCOME_STOPWORDS)]
        if not words:
            return 0.0
        query = set(self.query)
        return sum(1 for w in words if w in query or any(_similar(w, q) for q in query)) / len(words)


_MINOR = frozenset({"of", "the", "and", "in", "for", "to", "on", "a", "an"})


def _initialisms(phrase: str) -> set[str]:
    """"Body mass index" → {"bmi"}; "quality of life" → {"ql", "qol"} (three words at least
    for the first form, so that two-word phrases do not collide with common words)."""
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z\-]*", phrase)]
    words = [w for w in words if w.lower() not in ("scores", "score", "mean", "the", "change", "level", "levels")]
    if len(words) < 2 or len(words) > 6:
        return set()
    content = [w for w in words if w.lower() not in _MINOR]
    out = set()
    if len(content) >= 3:
        out.add("".join(w[0] for w in content).lower())
    if len(words) >= 3 and len(content) >= 2 and len(words) != len(content):
        out.add("".join(w[0] for w in words).lower())
    return {o for o in out if len(o) >= 3}


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
