"""Search evaluation: recall of the included studies and precision of generated queries.

``evaluate_search(topics, corpus, engine)`` generates a query for each topic (the classic
generator, or any engine through the ``search_query`` task), runs it over a corpus and counts
the topic's included studies among the records retrieved.

Corpora
-------
Anything with ``search(query: str) -> set[str]`` (record ids) is a corpus
(:class:`SearchBackend`). :class:`MemoryCorpus` is an independent brute-force evaluator of the
PubMed syntax over records held in memory (title, abstract, MeSH headings), with MeSH explosion
from :mod:`leads.vocab.mesh`; :func:`open_corpus` opens the developer corpus ``haystack``
(``search/haystack_dev`` of the shared data), a JSONL file of records, or an SQLite corpus built by
:mod:`leads.search.corpus` (:class:`SqliteCorpus`).

Topics
------
* ``cohen``: the ten Cohen 2006 drug-class reviews of the developer data. Each topic's query is
  generated from its name only (:data:`COHEN_TOPICS`: the drug class as the intervention, or
  "<condition> drugs", which the generator searches as the condition); Estrogens is evaluated a
  second time with its published criteria. Included studies are the topic's ``label_included == 1`` PMIDs,
  all present in the ``haystack_dev`` corpus. ``haystack_dev_sources.tsv`` (which record came
  from which review) is read for the evaluation only, never to build a query: it gives
  ``topic_precision``, the share of retrieved records that the review's own search had found.
* ``clef``: the CLEF eHealth TAR 2017/2018 diagnostic test accuracy topics. The expert Ovid
  queries are translated to PubMed syntax (:func:`translate_ovid`) and form the baseline; the
  generated query comes from the topic's 2018 protocol when there is one, else from its title.
  Both run over the topic's candidate PMIDs. The shared data has PMIDs only for the candidates:
  a topic is evaluated only when the corpus holds text for its relevant records, and the result
  says how many it holds (``haystack_dev`` holds text for 1 of 8,315 relevant CLEF records, so
  no CLEF topic can be evaluated on it).

Command: ``python -m leads.eval.search --corpus haystack --topics cohen [--json]``.
"""

from __future__ import annotations

import csv
import gzip
import html
import json
import os
import re
import sys
import time
import unicodedata
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import click

from leads.errors import LeadsError, QueryError
from leads.search.generate import read_criteria
from leads.search.query import (
    FIELD_ALIASES,
    And,
    DateRange,
    Node,
    Not,
    Or,
    Ref,
    Term,
    iter_leaves,
    parse,
    resolve_refs,
    split_query,
    to_pubmed,
)
from leads.tasks.search_query import QueryInput
from leads.vocab.mesh import Mesh

__all__ = [
    "COHEN_TOPICS",
    "MemoryCorpus",
    "OvidTranslation",
    "SearchBackend",
    "SearchEvaluation",
    "SearchTopic",
    "SqliteCorpus",
    "TopicResult",
    "clef_topics",
    "cohen_topics",
    "eval_search_command",
    "evaluate_search",
    "open_corpus",
    "protocol_input",
    "shared_data_dir",
    "topics_file",
    "translate_ovid",
]


# --------------------------------------------------------------------------------------------
# Corpora


@runtime_checkable
class SearchBackend(Protocol):
    """A corpus that runs a PubMed query and returns the ids of the matching records."""

    def search(self, query: str) -> set[str]: ...


_TOKEN_RE = re.compile(r"[a-z0-9]+")


def _tokens(text: str) -> list[str]:
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _TOKEN_RE.findall(text.casefold())


class _FieldIndex:
    """Word -> records, with each record's word list kept for phrase and proximity checks."""

    def __init__(self, texts: Sequence[list[str]]) -> None:
        self.texts = texts
        postings: dict[str, set[int]] = {}
        for i, words in enumerate(texts):
            for w in words:
                postings.setdefault(w, set()).add(i)
        self.postings = postings
        self.vocabulary = sorted(postings)

    def word(self, word: str) -> set[int]:
        return self.postings.get(word, set())

    def prefix(self, stem: str) -> set[int]:
        out: set[int] = set()
        i = bisect_left(self.vocabulary, stem)
        while i < len(self.vocabulary) and self.vocabulary[i].startswith(stem):
            out |= self.postings[self.vocabulary[i]]
            i += 1
        return out

    def phrase(self, words: list[str], truncated: bool) -> set[int]:
        if not words:
            return set()
        if len(words) == 1:
            return self.prefix(words[0]) if truncated else set(self.word(words[0]))
        last = self.prefix(words[-1]) if truncated else self.word(words[-1])
        candidates = set(last)
        for w in words[:-1]:
            candidates &= self.word(w)
            if not candidates:
                return set()
        n = len(words)
        out = set()
        for doc in candidates:
            text = self.texts[doc]
            for i in range(len(text) - n + 1):
                if text[i : i + n - 1] == words[:-1] and (
                    text[i + n - 1].startswith(words[-1]) if truncated else text[i + n - 1] == words[-1]
                ):
                    out.add(doc)
                    break
        return out

    def near(self, words: list[str], distance: int) -> set[int]:
        """Records where all ``words`` occur with at most ``distance`` other words between the
        first and the last of them, in any order (PubMed's ``[tiab:~N]``)."""
        candidates: set[int] | None = None
        for w in words:
            hits = self.word(w)
            candidates = set(hits) if candidates is None else candidates & hits
            if not candidates:
                return set()
        out = set()
        need = set(words)
        for doc in candidates or ():
            text = self.texts[doc]
            positions = [(p, w) for p, w in enumerate(text) if w in need]
            for start in range(len(positions)):
                seen: set[str] = set()
                for p, w in positions[start:]:
                    if p - positions[start][0] - (len(seen | {w}) - 1) > distance:
                        break
                    seen.add(w)
                    if seen == need:
                        out.add(doc)
                        break
                if doc in out:
                    break
        return out


@dataclass
class _Doc:
    doc_id: str
    pmid: str | None
    title: str
    abstract: str
    mesh: list[str]
    year: int | None


class MemoryCorpus:
    """A brute-force PubMed-syntax evaluator over records in memory.

    Semantics (documented approximations of PubMed):

    * words are lower-cased, accents removed and split at every non-alphanumeric character, in
      the records and in the query alike (``beta-blocker`` = ``beta blocker``);
    * ``[tiab]``/``[ti]``/``[ab]``: a term of several words is a phrase (as :func:`to_fts5`
      treats it), ``*`` a prefix on the last word, ``[tiab:~N]`` at most N other words between;
    * ``[mh]``: the record's MeSH headings, resolved to descriptors, against the term's heading
      and its tree descendants (``:noexp``: the heading only); records without MeSH headings
      never match. A subheading (``X/drug therapy``) is searched as its heading, ``[majr]`` as
      ``[mh]`` (the records carry neither subheadings nor major-topic marks): both
      over-retrieve, and :attr:`warnings` says so;
    * ``[tw]``, ``[all]`` and untagged terms: title, abstract and the words of the MeSH headings;
    * ``[pt]``, ``[sh]``, ``[au]``, ``[ot]``, ``[doi]`` and date fields other than ``[dp]``
      match nothing (the records do not carry them); ``[la]`` matches every record (the corpus
      is English); ``[dp]`` uses the record's year; ``[pmid]`` the PMID.
    """

    def __init__(self, docs: Iterable[Mapping[str, Any]], *, mesh: Mesh | None = None) -> None:
        self.docs: list[_Doc] = []
        for d in docs:
            doc_id = str(d.get("doc_id") or d.get("id") or d.get("pmid") or "")
            if not doc_id:
                raise LeadsError("every corpus record needs a doc_id, id or pmid")
            year = d.get("year")
            self.docs.append(
                _Doc(
                    doc_id=doc_id,
                    pmid=str(d["pmid"]) if d.get("pmid") else None,
                    title=d.get("title") or "",
                    abstract=d.get("abstract") or "",
                    mesh=list(d.get("mesh") or []),
                    year=int(year) if year not in (None, "") and str(year).isdigit() else None,
                )
            )
        self.mesh = mesh or Mesh.load()
        self.ti = _FieldIndex([_tokens(d.title) for d in self.docs])
        self.ab = _FieldIndex([_tokens(d.abstract) for d in self.docs])
        self.mh_text = _FieldIndex([_tokens(" ; ".join(d.mesh)) for d in self.docs])
        self._mh_ui: dict[str, set[int]] = {}
        self._mh_name: dict[str, set[int]] = {}
        resolved: dict[str, str | None] = {}
        for i, doc in enumerate(self.docs):
            for heading in doc.mesh:
                name = heading.strip().rstrip("*")
                if name not in resolved:
                    desc = self.mesh.descriptor(name)
                    resolved[name] = desc.ui if desc is not None else None
                ui = resolved[name]
                self._mh_name.setdefault(name.casefold(), set()).add(i)
                if ui is not None:
                    self._mh_ui.setdefault(ui, set()).add(i)
        self._pmid = {d.pmid: i for i, d in enumerate(self.docs) if d.pmid}
        self.ids = frozenset(d.doc_id for d in self.docs)
        self.warnings: list[str] = []

    @classmethod
    def from_jsonl(cls, path: str | Path, *, mesh: Mesh | None = None) -> MemoryCorpus:
        path = Path(path)
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            return cls((json.loads(line) for line in fh if line.strip()), mesh=mesh)

    def __len__(self) -> int:
        return len(self.docs)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self.ids

    def search(self, query: str) -> set[str]:
        return self.search_node(parse(query))

    def search_node(self, node: Node) -> set[str]:
        self.warnings = []
        return {self.docs[i].doc_id for i in self._eval(node, {})}

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def _eval(self, node: Node, memo: dict[Node, set[int]]) -> set[int]:
        hit = memo.get(node)
        if hit is not None:
            return hit
        if isinstance(node, Term):
            out = self._term(node)
        elif isinstance(node, DateRange):
            out = self._dates(node)
        elif isinstance(node, Ref):
            raise QueryError(f"#{node.number} must be resolved before searching")
        elif isinstance(node, Not):
            out = self._eval(node.left, memo) - self._eval(node.right, memo)
        elif isinstance(node, And):
            out = set(self._eval(node.items[0], memo))
            for item in node.items[1:]:
                if not out:
                    break
                out &= self._eval(item, memo)
        else:
            assert isinstance(node, Or)
            out = set()
            for item in node.items:
                out |= self._eval(item, memo)
        memo[node] = out
        return out

    def _text(self, indexes: Sequence[_FieldIndex], term: Term) -> set[int]:
        words = _tokens(term.text)
        if not words:
            return set()
        out: set[int] = set()
        for index in indexes:
            if term.proximity is not None:
                out |= index.near(words, term.proximity)
            else:
                out |= index.phrase(words, term.truncated)
        return out

    def _term(self, term: Term) -> set[int]:
        f = term.field
        if f in ("tiab", "ti", "ab"):
            indexes = {"tiab": (self.ti, self.ab), "ti": (self.ti,), "ab": (self.ab,)}[f]
            return self._text(indexes, term)
        if f in (None, "tw", "all", "nm"):
            return self._text((self.ti, self.ab, self.mh_text), term)
        if f in ("mh", "majr"):
            if f == "majr":
                self._warn("[majr] searched as [mh]: the records carry no major-topic marks")
            if term.subheading:
                self._warn(f"{to_pubmed(term)}: subheading ignored (the records carry none)")
            return self._heading(term.heading, explode=not term.noexp)
        if f == "pmid":
            i = self._pmid.get(term.text.strip())
            return {i} if i is not None else set()
        if f == "la":
            self._warn("[la] matches every record (no language data; the corpus is English)")
            return set(range(len(self.docs)))
        self._warn(f"[{f}] matches nothing: the records carry no such field")
        return set()

    def _heading(self, heading: str, *, explode: bool) -> set[int]:
        desc = self.mesh.descriptor(heading)
        if desc is None:
            return set(self._mh_name.get(heading.casefold(), set()))
        uis = [d.ui for d in self.mesh.descendants(desc)] if explode else [desc.ui]
        out: set[int] = set()
        for ui in uis:
            out |= self._mh_ui.get(ui, set())
        return out

    def _dates(self, dates: DateRange) -> set[int]:
        if dates.field != "dp":
            self._warn(f"[{dates.field}] matches nothing: the records carry only a year")
            return set()
        first, last = dates.first_day().year, dates.last_day().year
        return {i for i, d in enumerate(self.docs) if d.year is not None and first <= d.year <= last}


class SqliteCorpus:
    """A :class:`leads.search.corpus.Corpus` as a :class:`SearchBackend` (record ids are the
    corpus's document ids)."""

    def __init__(self, corpus: Any) -> None:
        self.corpus = corpus

    def search(self, query: str) -> set[str]:
        return {hit.id for hit in self.corpus.search(query)}

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self.corpus.get(doc_id) is not None


def shared_data_dir(data_dir: str | Path | None = None) -> Path:
    """The shared developer data: ``data_dir``, ``$LEADS_SHARED_DATA``, or ``shared/data`` next to
    the current directory or one of its parents."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get("LEADS_SHARED_DATA")
    if env:
        return Path(env)
    here = Path.cwd().resolve()
    for base in (here, *here.parents):
        for candidate in (base / "shared" / "data", base.parent / "shared" / "data"):
            if candidate.is_dir():
                return candidate
    raise LeadsError("shared data not found: pass --data DIR or set LEADS_SHARED_DATA")


def open_corpus(spec: str, data_dir: str | Path | None = None) -> SearchBackend:
    """``haystack`` (the developer corpus), a ``.jsonl``/``.jsonl.gz`` file of records, or an
    SQLite corpus built with :mod:`leads.search.corpus`."""
    if spec == "haystack":
        return MemoryCorpus.from_jsonl(
            shared_data_dir(data_dir) / "search" / "haystack_dev" / "haystack_dev.jsonl.gz"
        )
    path = Path(spec)
    if not path.exists():
        raise LeadsError(f"corpus not found: {spec}")
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        return MemoryCorpus.from_jsonl(path)
    from leads.search.corpus import Corpus

    return SqliteCorpus(Corpus(path))


# --------------------------------------------------------------------------------------------
# Ovid -> PubMed


@dataclass
class OvidTranslation:
    """A search strategy translated line by line to PubMed syntax.

    ``node``/``query`` are the last statement (the strategy's result) with every line reference
    resolved, or ``None`` when some line it needs could not be translated (``failed`` lists
    those lines with the reason). ``notes`` name the approximations made.
    """

    node: Node | None
    lines: list[str]
    statements: dict[int, Node]
    failed: list[tuple[int, str, str]]
    notes: list[str]

    @property
    def query(self) -> str | None:
        return to_pubmed(self.node) if self.node is not None else None


_OVID_FIELDS = {
    "tw": "tw",
    "ti,ab": "tiab",
    "ab,ti": "tiab",
    "ti": "ti",
    "ab": "ab",
    "mp": "tw",
    "af": "tw",
    "ti,ab,kw": "tiab",
    "tw,kw": "tw",
    "kw": "tw",
    "kf": "tw",
    "sh": "mh",
    "hw": "mh",
    "pt": "pt",
    "fs": "sh",
    "nm": "nm",
    "rn": "nm",
    "ot": "ot",
    "au": "au",
}
_SUBHEADINGS = {
    "di": "diagnosis",
    "du": "diagnostic use",
    "dg": "diagnostic imaging",
    "ra": "radiography",
    "us": "ultrasonography",
    "pa": "pathology",
    "bl": "blood",
    "ur": "urine",
    "co": "complications",
    "ep": "epidemiology",
    "dt": "drug therapy",
    "tu": "therapeutic use",
    "th": "therapy",
    "su": "surgery",
    "mi": "microbiology",
    "im": "immunology",
    "ge": "genetics",
    "me": "metabolism",
    "ri": "radionuclide imaging",
    "cf": "cerebrospinal fluid",
    "an": "analysis",
    "ae": "adverse effects",
    "ab": "abnormalities",
    "ai": "antagonists and inhibitors",
    "bs": "blood supply",
    "ch": "chemistry",
    "ci": "chemically induced",
    "cl": "classification",
    "cn": "congenital",
    "cy": "cytology",
    "de": "drug effects",
    "dh": "diet therapy",
    "ec": "economics",
    "et": "etiology",
    "hi": "history",
    "in": "injuries",
    "ip": "isolation and purification",
    "is": "isolation and purification",
    "mo": "mortality",
    "nu": "nursing",
    "pc": "prevention and control",
    "pd": "pharmacology",
    "ph": "physiology",
    "pk": "pharmacokinetics",
    "pp": "physiopathology",
    "px": "psychology",
    "rh": "rehabilitation",
    "rt": "radiotherapy",
    "sc": "secondary",
    "sn": "statistics and numerical data",
    "st": "standards",
    "td": "trends",
    "tr": "transplantation",
    "ul": "ultrastructure",
    "vi": "virology",
}
_OVID_DATE_FIELDS = {"ed": "edat", "dp": "dp", "yr": "dp", "da": "crdt", "dc": "crdt"}
_OVID_TOKEN_RE = re.compile(
    r"""\s*(?:
      (?P<lp>\() | (?P<rp>\))
    | (?P<suffix>\.\s?[a-z]{2}(?:,[a-z]{2})*\.?(?=\s|\)|$))
    | (?P<slash>/(?P<sub>[a-z]{2}(?:,\s?[a-z]{2})*)?(?![a-z])(?:\s*\[[^\]]*\])?)
    | (?P<quote>"[^"]*")
    | (?P<adj>(?:adj|near)\d*)(?=[\s(]|$)
    | (?P<op>and|or|not)(?=[\s(]|$)
    | (?P<word>(?:(?!\.\s?[a-z]{2}(?:,[a-z]{2})*\.?(?:\s|\)|$))[^\s()"/])+)
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_OVID_COMBINE_RE = re.compile(r"^(?P<op>or|and)\s*/\s*(?P<refs>[\d\s,\-–]+)$", re.IGNORECASE)
_OVID_LIMIT_RE = re.compile(r"^limit\s+(?P<ref>\d+)\s+to\s+(?P<what>.+)$", re.IGNORECASE)
_OVID_DEDUP_RE = re.compile(r"^remove duplicates from\s+(?P<ref>\d+)$", re.IGNORECASE)


def _clean(text: str) -> str:
    return text.replace("“", '"').replace("”", '"').replace("’", "'").replace("‘", "'").strip()


class _OvidError(Exception):
    pass


def _refs(spec: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*,\s*", spec.strip()):
        if not part:
            continue
        bounds = re.split(r"\s*[-–]\s*", part)
        if len(bounds) == 2:
            out.extend(range(int(bounds[0]), int(bounds[1]) + 1))
        else:
            out.append(int(part))
    return out


# The intermediate form of an Ovid line: text whose field is known only once the suffix after it
# (".tw.", ".ti,ab.") has been read.
@dataclass(frozen=True)
class _Text:
    text: str
    quoted: bool


@dataclass(frozen=True)
class _Adj:
    left: Any
    right: Any
    distance: int


@dataclass(frozen=True)
class _Op:
    op: str
    left: Any
    right: Any


class _OvidLine:
    """A recursive-descent parser for one Ovid statement."""

    def __init__(self, line: str, notes: list[str]) -> None:
        # Bracketed comments ("[Triage tool keywords]", "[mp=title, abstract, ...]") are Ovid's
        # or the searcher's annotations, not search terms.
        line = re.sub(r"(?<!/[a-z]{2})\s*\[[^\]]*\]", "", line, flags=re.IGNORECASE)
        self.line = line
        self.tokens: list[tuple[str, re.Match[str]]] = []
        pos = 0
        while pos < len(line):
            m = _OVID_TOKEN_RE.match(line, pos)
            if m is None or m.end() == pos:
                if line[pos:].strip() == "":
                    break
                raise _OvidError(f"cannot read {line[pos:pos + 20]!r}")
            kind = next(k for k in ("lp", "rp", "suffix", "slash", "quote", "adj", "op", "word")
                        if m.group(k) is not None)
            self.tokens.append((kind, m))
            pos = m.end()
        self.pos = 0
        self.notes = notes

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)

    def peek(self, kind: str | None = None) -> re.Match[str] | None:
        if self.pos >= len(self.tokens):
            return None
        k, m = self.tokens[self.pos]
        return m if kind is None or k == kind else None

    def take(self, kind: str) -> re.Match[str] | None:
        m = self.peek(kind)
        if m is not None:
            self.pos += 1
        return m

    def parse(self) -> Node:
        ir = self.expr()
        if self.pos != len(self.tokens):
            raise _OvidError(f"unexpected {self.tokens[self.pos][1].group(0).strip()!r}")
        if self._has_text(ir):
            self.note("text without a field suffix searched as .mp. ([tw])")
        return self.realize(ir, "tw")

    # Operators are read left to right (as PubMed reads its own); adjN binds tighter.
    def expr(self) -> Any:
        node = self.unit()
        while (m := self.take("op")) is not None:
            node = _Op(m.group("op").lower(), node, self.unit())
        return node

    def unit(self) -> Any:
        node = self.primary()
        while (m := self.take("adj")) is not None:
            digits = re.sub(r"\D", "", m.group("adj"))
            node = _Adj(node, self.primary(), int(digits) if digits else 1)
        return node

    def primary(self) -> Any:
        if self.take("lp") is not None:
            inner = self.expr()
            if self.take("rp") is None:
                raise _OvidError("unbalanced parenthesis")
            return self.suffixed(inner)
        explode = False
        word = self.peek("word")
        if (word is not None and word.group("word").casefold() == "exp"
                and self.pos + 1 < len(self.tokens) and self.tokens[self.pos + 1][0] == "quote"):
            self.pos += 1
            explode = True
        m = self.take("quote")
        if m is not None:
            text = m.group("quote").strip('"')
            slash = self.take("slash")
            if slash is not None:
                return self.heading(["exp", text] if explode else [text], slash)
            return self.suffixed(_Text(text, True))
        words: list[str] = []
        while (m := self.take("word")) is not None:
            words.append(m.group("word"))
        if not words:
            raise _OvidError("a term was expected")
        slash = self.take("slash")
        if slash is not None:
            return self.heading(words, slash)
        if len(words) == 1 and words[0].lstrip("#").isdigit() and self.peek("suffix") is None:
            return Ref(int(words[0].lstrip("#")))
        return self.suffixed(_Text(" ".join(words), False))

    def heading(self, words: list[str], slash: re.Match[str]) -> Node:
        explode = words[0].casefold() == "exp"
        if explode:
            words = words[1:]
        major = bool(words) and words[0].startswith("*")
        text = " ".join(words).lstrip("*").strip()
        if not text:
            raise _OvidError("empty subject heading")
        sub = slash.group("sub")
        if sub:
            first = sub.split(",")[0].strip().casefold()
            name = _SUBHEADINGS.get(first)
            if name is None:
                raise _OvidError(f"unknown subheading /{first}")
            text = f"{text}/{name}"
        return Term(text, field="majr" if major else "mh", phrase=True, noexp=not explode)

    def suffixed(self, ir: Any) -> Any:
        m = self.take("suffix")
        if m is None:
            return ir
        fields = re.sub(r"[.\s]", "", m.group("suffix")).casefold()
        first = fields.split(",")[0]
        if first in _OVID_DATE_FIELDS:
            return self.dates(ir, _OVID_DATE_FIELDS[first])
        field = _OVID_FIELDS.get(fields) or _OVID_FIELDS.get(first)
        if field is None:
            raise _OvidError(f"unknown Ovid field .{fields}.")
        if fields in ("mp", "af"):
            self.note(".mp. (multi-purpose) translated as [tw]")
        return self.realize(ir, field)

    def dates(self, ir: Any, field: str) -> Node:
        years: list[str] = []

        def collect(x: Any) -> None:
            if isinstance(x, _Text) and re.fullmatch(r"\d{4}[*$]?", x.text):
                years.append(x.text[:4])
            elif isinstance(x, _Op) and x.op == "or":
                collect(x.left)
                collect(x.right)
            else:
                raise _OvidError("only years can be searched in a date field")

        collect(ir)
        ranges = [DateRange(y, y, field) for y in years]
        return ranges[0] if len(ranges) == 1 else Or(tuple(ranges))

    @staticmethod
    def _has_text(ir: Any) -> bool:
        if isinstance(ir, _Text):
            return True
        if isinstance(ir, (_Op, _Adj)):
            return _OvidLine._has_text(ir.left) or _OvidLine._has_text(ir.right)
        return False

    def realize(self, ir: Any, field: str) -> Node:
        if isinstance(ir, _Text):
            return self.term(ir, field)
        if isinstance(ir, _Adj):
            return self.adjacent(ir, field)
        if isinstance(ir, _Op):
            left, right = self.realize(ir.left, field), self.realize(ir.right, field)
            if ir.op == "and":
                return And((left, right))
            if ir.op == "or":
                return Or((left, right))
            return Not(left, right)
        return ir  # a Node already (heading, reference, fielded group)

    def adjacent(self, ir: _Adj, field: str) -> Node:
        left, right = self.realize(ir.left, field), self.realize(ir.right, field)
        prox_field = {"tw": "tiab"}.get(field, field)
        simple = (
            isinstance(left, Term) and isinstance(right, Term) and not left.truncated
            and not right.truncated and prox_field in ("tiab", "ti", "ab")
        )
        if simple:
            assert isinstance(left, Term) and isinstance(right, Term)
            words = f"{left.text} {right.text}"
            if ir.distance <= 1:
                return Term(words, field=field, phrase=True)
            if field != prox_field:
                self.note("adjN in [tw] searched as [tiab] proximity")
            # Ovid's adjN allows N-1 words between; PubMed's ~N counts the words between.
            return Term(words, field=prox_field, phrase=True, proximity=ir.distance - 1)
        self.note("adjN with truncation or an OR group translated as AND (over-retrieves)")
        return And((left, right))

    def term(self, ir: _Text, field: str) -> Node:
        words = ir.text.split()
        if words and words[0][:1] in "$*?#":
            self.note("leading wildcards dropped (PubMed has no left truncation)")
            words[0] = words[0].lstrip("$*?#")
        truncated = False
        out: list[str] = []
        for i, w in enumerate(words):
            m = re.search(r"[$*:?#]", w)
            if m is None:
                out.append(w)
                continue
            rest = w[m.start():]
            if re.fullmatch(r"[$*:]\d*", rest) is None or i != len(words) - 1:
                self.note("Ovid wildcards inside a word or phrase approximated by truncation "
                          "at the wildcard")
            elif re.fullmatch(r"\$\d+", rest):
                self.note("limited truncation ($N) translated as unlimited truncation (*)")
            out.append(w[: m.start()])
            if i == len(words) - 1 or rest[0] in "?#":
                truncated = True
                break  # nothing after a wildcard can be kept in PubMed
        cleaned = re.sub(r"[^\w\s\-'.,/+&]", " ", " ".join(w for w in out if w)).strip(" .,")
        if not cleaned:
            raise _OvidError(f"nothing searchable in {ir.text!r}")
        if field in ("mh", "majr"):
            return Term(cleaned, field=field, phrase=True)
        return Term(cleaned, field=field, phrase=" " in cleaned or ir.quoted or "-" in cleaned,
                    truncated=truncated)


def _pubmed_line(line: str, notes: list[str]) -> Node:
    text = _clean(line)
    # "#1 OR #2 OR 6": a bare number among #-references is one too.
    if "#" in text:
        text = re.sub(r"\b(OR|AND|NOT)\s+(\d+)\b", r"\1 #\2", text, flags=re.IGNORECASE)
    if text.count('"') % 2:
        text = text.replace('"', "")
        notes.append("unbalanced quotation marks removed")
    if re.search(r"\w\?\w", text):
        text = re.sub(r"(\w)\?[\w?]*\*?", r"\1*", text)
        notes.append("'?' wildcards inside a word approximated by truncation there")
    if re.search(r"\)\*", text):
        text = text.replace(")*", ")")
        notes.append("'*' after a closing parenthesis removed")
    text = re.sub(r"\[\s*mesh\s*\]", "[mh]", text, flags=re.IGNORECASE)
    text = re.sub(r"\bexp\s+", "", text, flags=re.IGNORECASE)
    return parse(text)


def translate_ovid(text: str) -> OvidTranslation:
    """Translate a search strategy, one statement per line, to PubMed syntax.

    Ovid forms: ``exp X/`` (``"X"[mh]``), ``X/`` (``[mh:noexp]``), ``*X/`` (``[majr]``),
    ``X/di`` (``"X/diagnosis"[mh]``), ``X.tw.``, ``X.ti,ab.``, ``X.ti.``, ``X.ab.``, ``X.mp.``
    (as ``[tw]``), ``X.pt.``, ``X.sh.``, ``(a or b).tw.`` (the field applied to every term of
    the group), ``a adj3 b`` (``"a b"[tiab:~2]``: Ovid counts the distance, PubMed the words
    between; AND when a side is truncated or a group), ``$``/``$N``/``:`` truncation (``*``),
    ``?``/``#`` wildcards (truncated there), ``(2012* or 2013*).ed.`` (date ranges), statement
    numbers (``1 or 2``, ``(3 or 4) and 5``), ``or/1-5``, ``and/1,3``, ``limit N to ...`` (the
    limit dropped) and ``remove duplicates from N``; text without a field suffix is searched as
    ``.mp.``. Lines already in PubMed syntax (``"X"[MeSH]``, ``#1 OR #2``) are parsed as they
    are; a line that starts with AND/OR/NOT continues the line before. Operators within a line
    are read left to right, ``adjN`` binding tighter.
    """
    lines: list[str] = []
    for raw in text.splitlines():
        line = _clean(raw)
        if not line:
            continue
        if lines and re.match(r"^(?:and|or|not)\s", line, re.IGNORECASE):
            lines[-1] = f"{lines[-1]} {line}"
        else:
            lines.append(line)
    statements: dict[int, Node] = {}
    failed: list[tuple[int, str, str]] = []
    notes: list[str] = []
    for number, line in enumerate(lines, start=1):
        try:
            statements[number] = _ovid_line(line, notes)
        except (_OvidError, QueryError, ValueError) as exc:
            failed.append((number, line, str(exc).split("\n")[0]))
    node: Node | None = None
    if lines and len(lines) in statements:
        resolved: dict[int, Node] = {}

        def resolve(number: int, active: tuple[int, ...]) -> Node:
            if number in resolved:
                return resolved[number]
            if number in active:
                raise QueryError(f"line {number} refers to itself")
            if number not in statements:
                raise QueryError(f"line {number} is needed but was not translated")
            refs = {leaf.number for leaf in iter_leaves(statements[number]) if isinstance(leaf, Ref)}
            history = {ref: resolve(ref, (*active, number)) for ref in refs}
            resolved[number] = resolve_refs(statements[number], history)
            return resolved[number]

        try:
            node = resolve(len(lines), ())
        except QueryError as exc:
            failed.append((len(lines), lines[-1], f"cannot resolve: {exc}".split("\n")[0]))
    return OvidTranslation(node=node, lines=lines, statements=statements, failed=failed,
                           notes=notes)


def _ovid_line(line: str, notes: list[str]) -> Node:
    m = _OVID_COMBINE_RE.match(re.sub(r"\s*\[[^\]]*\]\s*$", "", line))
    if m:
        refs = [Ref(n) for n in _refs(m.group("refs"))]
        if len(refs) == 1:
            return refs[0]
        return Or(tuple(refs)) if m.group("op").lower() == "or" else And(tuple(refs))
    m = _OVID_LIMIT_RE.match(line)
    if m:
        message = f"limit dropped: {m.group('what')}"
        if message not in notes:
            notes.append(message)
        return Ref(int(m.group("ref")))
    m = _OVID_DEDUP_RE.match(line)
    if m:
        return Ref(int(m.group("ref")))
    tags = re.findall(r"\[([^\]]*)\]", line)
    if re.search(r"#\d", line) or any(
        re.sub(r"\s+", "", t.casefold()).split(":")[0] in FIELD_ALIASES for t in tags
    ):
        return _pubmed_line(line, notes)
    return _OvidLine(line, notes).parse()


# --------------------------------------------------------------------------------------------
# Topics


@dataclass
class SearchTopic:
    """One evaluation topic: the input for query generation and the records to find.

    ``included`` are the record ids to find; ``candidates`` (CLEF) limit the search to the
    topic's candidate records; ``baseline_query`` is an expert query in PubMed syntax to compare
    with; ``topic_records`` (evaluation only) the records the review's own search found.
    """

    name: str
    input: QueryInput
    included: frozenset[str]
    candidates: frozenset[str] | None = None
    baseline_query: str | None = None
    baseline_notes: tuple[str, ...] = ()
    topic_records: frozenset[str] | None = None
    description: str = ""


#: Cohen 2006 topics: (topic, intervention, population) from the topic's name alone.
COHEN_TOPICS: tuple[tuple[str, str, str | None], ...] = (
    ("ACEInhibitors", "ACE inhibitors", None),
    ("ADHD", "ADHD drugs", None),
    ("Antihistamines", "antihistamines", None),
    ("AtypicalAntipsychotics", "atypical antipsychotics", None),
    ("BetaBlockers", "beta blockers", None),
    ("CalciumChannelBlockers", "calcium channel blockers", None),
    ("Estrogens", "estrogens", None),
    ("NSAIDS", "NSAIDs", None),
    ("OralHypoglycemics", "oral hypoglycemics", None),
    ("UrinaryIncontinence", "urinary incontinence drugs", None),
)


def _sources(data: Path) -> dict[str, set[str]]:
    path = data / "search" / "haystack_dev" / "haystack_dev_sources.tsv"
    out: dict[str, set[str]] = {}
    if not path.exists():
        return out
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            for source in row["sources"].split("|"):
                if source.startswith("cohen2006:"):
                    out.setdefault(source.split(":", 1)[1], set()).add(row["doc_id"])
    return out


def cohen_topics(data_dir: str | Path | None = None, *, criteria: bool = True) -> list[SearchTopic]:
    """The ten Cohen 2006 developer topics (plus Estrogens with its criteria when ``criteria``)."""
    data = shared_data_dir(data_dir)
    sources = _sources(data)
    topics: list[SearchTopic] = []
    for name, intervention, population in COHEN_TOPICS:
        path = data / "screening" / "cohen2006" / f"{name}.csv"
        with path.open(encoding="utf-8") as fh:
            included = frozenset(
                str(row["pubmedID"]).strip() for row in csv.DictReader(fh)
                if row.get("label_included") == "1" and row.get("pubmedID")
            )
        records = frozenset(sources[name]) if name in sources else None
        inp = QueryInput(intervention=intervention, population=population)
        topics.append(SearchTopic(name=name, input=inp, included=included, topic_records=records,
                                  description=f"I={intervention!r}" +
                                  (f", P={population!r}" if population else "")))
        crit_path = data / "screening" / "criteria" / f"{name}.txt"
        if criteria and crit_path.exists():
            crits = read_criteria(crit_path.read_text(encoding="utf-8"))
            topics.append(SearchTopic(
                name=f"{name}+criteria",
                input=QueryInput(intervention=intervention, population=population, criteria=crits),
                included=included, topic_records=records,
                description=f"I={intervention!r} + {len(crits)} criteria from {crit_path.name}",
            ))
    return topics


def topics_file(path: str | Path) -> list[SearchTopic]:
    """Topics from a JSON file ``{"topics": [{"name", "population"?, "intervention"?,
    "comparison"?, "outcome"?, "criteria_file"? (relative to the file), "included": [ids]}]}``:
    small hand-made evaluation sets (the regression data of :mod:`leads.eval.regression`)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LeadsError(f"{path}: not a readable topics JSON file ({exc})") from exc
    topics: list[SearchTopic] = []
    for i, entry in enumerate(data.get("topics", []) if isinstance(data, dict) else []):
        if not isinstance(entry, dict):
            raise LeadsError(f"{path}: topic {i + 1} is not an object")
        name = str(entry.get("name") or f"topic {i + 1}")
        included = entry.get("included")
        if not isinstance(included, list) or not included:
            raise LeadsError(f"{path}: topic {name!r} has no 'included' list of record ids")
        criteria: list[str] = []
        if entry.get("criteria_file"):
            crit_path = path.parent / str(entry["criteria_file"])
            if not crit_path.is_file():
                raise LeadsError(f"{path}: topic {name!r}: criteria file {crit_path} not found")
            criteria = read_criteria(crit_path.read_text(encoding="utf-8"))
        try:
            inp = QueryInput(population=entry.get("population"), intervention=entry.get("intervention"),
                             comparison=entry.get("comparison"), outcome=entry.get("outcome"),
                             criteria=criteria)
        except ValueError as exc:
            raise LeadsError(f"{path}: topic {name!r}: {exc}") from exc
        described = ", ".join(f"{k[0].upper()}={entry[k]!r}" for k in ("population", "intervention",
                                                                        "comparison", "outcome") if entry.get(k))
        topics.append(SearchTopic(name=name, input=inp, included=frozenset(str(x) for x in included),
                                  description=described + (f" + {len(criteria)} criteria" if criteria else "")))
    if not topics:
        raise LeadsError(f"{path}: no topics (expected {{\"topics\": [...]}})")
    return topics


def protocol_input(xml_text: str, title: str | None = None) -> QueryInput:
    """A CLEF 2018 DTA protocol as a query input: participants and target conditions as the
    population, index tests as the intervention, the objective as a criterion (its concepts
    join the facet of their category)."""
    # Read with a pattern, not an XML parser: some protocols hold a bare "&" or "<" ("H&E").

    def part(tag: str) -> str:
        m = re.search(rf"<{tag}>(.*?)</{tag}>", xml_text, re.DOTALL)
        return html.unescape(m.group(1)).strip() if m else ""

    population = "\n".join(p for p in (part("participants"), part("target_conditions")) if p)
    intervention = part("index_tests")
    criteria = [c for c in (title or "", part("objective")) if c]
    return QueryInput(population=population[:2000] or None, intervention=intervention[:2000] or None,
                      criteria=[c[:2000] for c in criteria])


def _title_input(title: str) -> QueryInput:
    # DTA titles read "<index test> for <target condition> [in <population>]".
    head, sep, tail = title.partition(" for ")
    if sep:
        return QueryInput(intervention=head.strip(), population=tail.strip())
    return QueryInput(criteria=[title])


def _read_qrels(path: Path) -> dict[str, set[str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    out: dict[str, set[str]] = {}
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 4 and parts[3].lstrip("-").isdigit() and int(parts[3]) > 0:
                out.setdefault(parts[0], set()).add(parts[2])
    return out


def _read_clef_topic(path: Path) -> tuple[str, str, str, list[str]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    topic = re.search(r"Topic:\s*(\S+)", text)
    title = re.search(r"Title:\s*(.+)", text)
    query = text.split("Query:", 1)[1].split("Pids:", 1)[0] if "Query:" in text else ""
    pids = re.findall(r"^\s*(\d+)\s*$", text.split("Pids:", 1)[1], re.M) if "Pids:" in text else []
    return (topic.group(1) if topic else path.stem, title.group(1).strip() if title else "",
            query, pids)


def clef_topics(data_dir: str | Path | None = None) -> list[SearchTopic]:
    """The CLEF TAR 2017 (training and test) and 2018 task 2 test topics, with the translated
    expert query as the baseline (``baseline_query`` is ``None`` where it could not be
    translated) and abstract-level relevance as the included records."""
    data = shared_data_dir(data_dir) / "search"
    qrels: dict[str, set[str]] = {}
    for path in (
        data / "clef_tar_2017" / "training" / "qrels" / "train.combined.qrels.gz",
        data / "clef_tar_2017" / "testing" / "qrels" / "qrel_abs_test.txt.gz",
        data / "clef_tar_2018" / "task2" / "testing" / "qrels" / "qrel_abs_task2",
    ):
        if path.exists():
            for topic, rel in _read_qrels(path).items():
                qrels.setdefault(topic, set()).update(rel)
    protocols = {
        p.stem: p
        for split in ("training", "testing")
        for p in sorted((data / "clef_tar_2018" / "task1" / split / "protocols").glob("*.xml"))
    }
    files = [
        *sorted((data / "clef_tar_2017" / "training" / "topics").glob("*.txt")),
        *sorted((data / "clef_tar_2017" / "testing" / "topics").glob("*.txt")),
        *sorted((data / "clef_tar_2018" / "task2" / "testing" / "topics").glob("*.txt")),
    ]
    topics: list[SearchTopic] = []
    seen: set[str] = set()
    for path in files:
        topic, title, query, pids = _read_clef_topic(path)
        if topic in seen:
            continue
        seen.add(topic)
        translation = translate_ovid(query)
        if topic in protocols:
            inp = protocol_input(protocols[topic].read_text(encoding="utf-8"), title)
            how = "2018 protocol"
        else:
            inp = _title_input(title)
            how = "title"
        topics.append(SearchTopic(
            name=topic, input=inp, included=frozenset(qrels.get(topic, set())),
            candidates=frozenset(pids), baseline_query=translation.query,
            baseline_notes=tuple(translation.notes + [f"line {n}: {why}" for n, _, why in
                                                      translation.failed]),
            description=f"{title} (generated from the {how})",
        ))
    return topics


# --------------------------------------------------------------------------------------------
# Evaluation


@dataclass
class TopicResult:
    """One topic's outcome. ``recall``/``precision`` are ``None`` when undefined (nothing to find,
    nothing retrieved); ``skipped`` says why a topic was not evaluated."""

    topic: str
    description: str
    query: str | None
    subqueries: int
    retrieved: int
    included: int
    found: int
    recall: float | None
    precision: float | None
    topic_precision: float | None = None
    subqueries_union_ok: bool | None = None
    baseline_retrieved: int | None = None
    baseline_found: int | None = None
    baseline_recall: float | None = None
    baseline_precision: float | None = None
    available: int | None = None
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class SearchEvaluation:
    engine: str
    corpus: str
    rct_filter: bool
    topics: list[TopicResult]

    @property
    def evaluated(self) -> list[TopicResult]:
        return [t for t in self.topics if t.skipped is None]

    def summary(self) -> dict[str, Any]:
        done = self.evaluated
        recalls = [t.recall for t in done if t.recall is not None]
        precisions = [t.precision for t in done if t.precision is not None]
        included = sum(t.included for t in done)
        found = sum(t.found for t in done)
        retrieved = sum(t.retrieved for t in done)
        return {
            "topics": len(done),
            "skipped": len(self.topics) - len(done),
            "macro_recall": _mean(recalls),
            "micro_recall": found / included if included else None,
            "macro_precision": _mean(precisions),
            "micro_precision": found / retrieved if retrieved else None,
            "found": found,
            "included": included,
            "retrieved": retrieved,
            "min_recall": min(recalls) if recalls else None,
            "topics_recall_ge_0_9": sum(1 for r in recalls if r >= 0.9),
            "subqueries_union_ok": all(t.subqueries_union_ok is not False for t in done),
        }

    def to_dict(self) -> dict[str, Any]:
        summary = self.summary()
        return {"task": "search", "dataset": self.corpus, "engine": self.engine, "corpus": self.corpus,
                "rct_filter": self.rct_filter, "n": summary["topics"], "summary": summary,
                "metrics": {k: summary[k] for k in ("macro_recall", "micro_recall", "macro_precision",
                                                    "micro_precision", "min_recall")},
                "topics": [asdict(t) for t in self.topics]}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


QueryMaker = Callable[[QueryInput], tuple[str, list[str], list[str]]]


def _query_maker(engine: str, rct_filter: bool, max_length: int) -> QueryMaker:
    if engine == "classic":
        from leads.search.generate import GenerationOptions, generate_query

        options = GenerationOptions(rct_filter=rct_filter, max_length=max_length)

        def classic(inp: QueryInput) -> tuple[str, list[str], list[str]]:
            g = generate_query(inp, options)
            return g.query, g.subqueries, list(g.notes)

        return classic

    from leads.engines import get_engine
    from leads.search.generate import rct_filter_node
    from leads.tasks import TASKS

    runner = get_engine(engine)

    def other(inp: QueryInput) -> tuple[str, list[str], list[str]]:
        out = runner.run(TASKS["search_query"], inp).output
        node = parse(out.query)
        if rct_filter:
            node = And((node, rct_filter_node()))
        return to_pubmed(node), [to_pubmed(n) for n in split_query(node, max_length=max_length)], []

    return other


def evaluate_search(
    topics: Sequence[SearchTopic],
    corpus: SearchBackend,
    engine: str = "classic",
    *,
    rct_filter: bool = False,
    max_length: int = 4000,
    corpus_name: str = "",
    check_subqueries: bool = True,
    min_available: float = 0.5,
    progress: Callable[[str], None] | None = None,
) -> SearchEvaluation:
    """Generate a query per topic with ``engine``, run it over ``corpus`` and measure recall of
    the included records and precision; also runs the topic's baseline query when it has one.

    When the corpus can tell which records it holds (``in``), recall counts only the included
    records it holds, and a topic is skipped when it holds fewer than ``min_available`` of them
    (a recall over a handful of records says nothing).
    """
    make = _query_maker(engine, rct_filter, max_length)
    results: list[TopicResult] = []
    for topic in topics:
        started = time.perf_counter()
        if progress is not None:
            progress(topic.name)
        included = set(topic.included)
        if topic.candidates is not None:
            included &= topic.candidates
        available = None
        if hasattr(corpus, "__contains__"):
            present = {i for i in included if i in corpus}
            available = len(present)
            if not included or available < min_available * len(included):
                results.append(TopicResult(
                    topic=topic.name, description=topic.description, query=None, subqueries=0,
                    retrieved=0, included=len(included), found=0, recall=None, precision=None,
                    available=available,
                    skipped=f"the corpus holds {available} of the topic's {len(included)} "
                            "included records",
                ))
                continue
            # Recall over what the corpus can return at all.
            included = present
        query, subqueries, notes = make(topic.input)
        retrieved = corpus.search(query)
        union_ok = None
        if check_subqueries and len(subqueries) > 1:
            union: set[str] = set()
            for sub in subqueries:
                union |= corpus.search(sub)
            union_ok = union == retrieved
        if topic.candidates is not None:
            retrieved &= topic.candidates
        found = retrieved & included
        result = TopicResult(
            topic=topic.name, description=topic.description, query=query,
            subqueries=len(subqueries), retrieved=len(retrieved), included=len(included),
            found=len(found), recall=_ratio(len(found), len(included)),
            precision=_ratio(len(found), len(retrieved)), subqueries_union_ok=union_ok,
            available=available, notes=notes,
        )
        if topic.topic_records is not None:
            result.topic_precision = _ratio(len(retrieved & topic.topic_records), len(retrieved))
        if topic.baseline_query is not None:
            base = corpus.search(topic.baseline_query)
            if topic.candidates is not None:
                base &= topic.candidates
            base_found = base & included
            result.baseline_retrieved = len(base)
            result.baseline_found = len(base_found)
            result.baseline_recall = _ratio(len(base_found), len(included))
            result.baseline_precision = _ratio(len(base_found), len(base))
        warnings = getattr(corpus, "warnings", None)
        if warnings:
            result.notes.extend(f"corpus: {w}" for w in warnings)
        result.seconds = round(time.perf_counter() - started, 3)
        results.append(result)
    return SearchEvaluation(engine=engine, corpus=corpus_name, rct_filter=rct_filter,
                            topics=results)


# --------------------------------------------------------------------------------------------
# Reporting and the command


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown_table(evaluation: SearchEvaluation) -> str:
    """The per-topic table and the summary row in Markdown."""
    baseline = any(t.baseline_retrieved is not None for t in evaluation.topics)
    head = ["topic", "retrieved", "includes found/total", "recall", "precision",
            "in topic's records"]
    if baseline:
        head += ["baseline retrieved", "baseline recall", "baseline precision"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in evaluation.topics:
        if t.skipped:
            rows.append(f"| {t.topic} | skipped: {t.skipped} |" + " |" * (len(head) - 2))
            continue
        cells = [t.topic, str(t.retrieved), f"{t.found}/{t.included}", _fmt(t.recall),
                 _fmt(t.precision), _fmt(t.topic_precision)]
        if baseline:
            cells += [str(t.baseline_retrieved) if t.baseline_retrieved is not None else "–",
                      _fmt(t.baseline_recall), _fmt(t.baseline_precision)]
        rows.append("| " + " | ".join(cells) + " |")
    s = evaluation.summary()
    cells = ["**all (micro)**", str(s["retrieved"]), f"{s['found']}/{s['included']}",
             _fmt(s["micro_recall"]), _fmt(s["micro_precision"]), ""]
    if baseline:
        cells += ["", "", ""]
    rows.append("| " + " | ".join(cells) + " |")
    cells = ["**mean (macro)**", "", "", _fmt(s["macro_recall"]), _fmt(s["macro_precision"]), ""]
    if baseline:
        cells += ["", "", ""]
    rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


@click.command("search")
@click.option("--corpus", "corpus_spec", default="haystack", show_default=True,
              help="'haystack' (shared developer corpus), a records .jsonl[.gz], or a corpus .db.")
@click.option("--topics", "topic_set", type=click.Choice(["cohen", "clef", "all"]), default="cohen",
              show_default=True, help="Topic set: Cohen 2006 drug-class reviews, CLEF TAR, or both.")
@click.option("--engine", default="classic", show_default=True,
              help="Engine that writes the queries (classic, openai, llamacpp, ...).")
@click.option("--rct-filter/--no-rct-filter", default=False, show_default=True,
              help="AND the Cochrane highly sensitive RCT filter to every query.")
@click.option("--max-length", type=int, default=4000, show_default=True,
              help="Longest sub-query in characters.")
@click.option("--no-criteria", is_flag=True, help="Skip the Cohen topics' criteria variants.")
@click.option("--topic", "only", multiple=True, help="Evaluate only these topics (repeatable).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help="The shared data folder (default: $LEADS_SHARED_DATA or ../shared/data).")
@click.option("--topics-file", "topics_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Topics from a JSON file (name, PICO, criteria_file, included ids) instead of --topics.")
@click.option("--limit", type=int, default=0, show_default=True,
              help="Evaluate only the first N topics (0 = all).")
@click.option("--markdown", "markdown_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the Markdown table to this file.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
def eval_search_command(corpus_spec: str, topic_set: str, engine: str, rct_filter: bool,
                        max_length: int, no_criteria: bool, only: tuple[str, ...],
                        data_dir: str | None, topics_path: Path | None, limit: int,
                        markdown_file: Path | None, as_json: bool) -> None:
    """Recall and precision of generated search queries over a local corpus."""
    try:
        topics: list[SearchTopic] = []
        if topics_path is not None:
            topics = topics_file(topics_path)
        else:
            if topic_set in ("cohen", "all"):
                topics += cohen_topics(data_dir, criteria=not no_criteria)
            if topic_set in ("clef", "all"):
                topics += clef_topics(data_dir)
        if limit:
            topics = topics[:limit]
        if only:
            topics = [t for t in topics if t.name in only]
            if not topics:
                raise LeadsError(f"no topic named {', '.join(only)}")
        corpus = open_corpus(corpus_spec, data_dir)
        evaluation = evaluate_search(topics, corpus, engine, rct_filter=rct_filter,
                                     max_length=max_length, corpus_name=corpus_spec)
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from exc
    if markdown_file is not None:
        markdown_file.parent.mkdir(parents=True, exist_ok=True)
        markdown_file.write_text(markdown_table(evaluation) + "\n", encoding="utf-8")
    if as_json:
        click.echo(json.dumps(evaluation.to_dict(), indent=2, ensure_ascii=False))
        return
    if markdown_file is not None:
        return
    click.echo(markdown_table(evaluation))
    s = evaluation.summary()
    click.echo(
        f"\n{s['topics']} topics evaluated ({s['skipped']} skipped); macro recall "
        f"{_fmt(s['macro_recall'])}, micro recall {_fmt(s['micro_recall'])}; "
        f"{s['topics_recall_ge_0_9']} topics with recall >= 0.9"
    )


def main(argv: Sequence[str] | None = None) -> None:
    eval_search_command.main(args=list(argv) if argv is not None else sys.argv[1:],
                             prog_name="python -m leads.eval.search")


if __name__ == "__main__":
    main()
