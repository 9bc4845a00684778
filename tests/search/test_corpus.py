"""The local search corpus (:mod:`leads.search.corpus`) against an independent evaluator.

Corpora are built from vendored real records:

* ``tests/fixtures/search/haystack_sample.jsonl``: 200 lines of
  ``search/haystack_dev/haystack_dev.jsonl.gz`` (the developer haystack; Cohen 2006 PubMed
  records with their MeSH headings, and evidence-inference PMC articles), none of them in
  ``estrogens_150.jsonl``, chosen with a fixed seed so that MeSH explosion has something to
  find: four records for each of 20 headings (Nifedipine, Estradiol, the old name *Glycated
  Hemoglobin A*, the unresolvable ``NA``, Hypertension, Myocardial Infarction, ...), four with
  Nifedipine but not *Calcium Channel Blockers* (pharmacological-action explosion), then random
  records with MeSH (120 in all), 40 PubMed and 40 PMC records without MeSH;
* ``tests/fixtures/project/estrogens_150.jsonl`` (Cohen Estrogens records with authors);
* the PubMed XML and MEDLINE fixtures under ``tests/fixtures/formats/`` (major topics,
  qualifiers, publication types, languages, DOIs).

The reference evaluator here reads the same files on its own (``json`` and ``read_records``) and
decides every leaf per document in Python: tokens by regex, phrases as token windows, MeSH by
``Mesh.is_descendant`` on each record's headings, and so on. Hypothesis then checks that random
queries give the same documents in the corpus (both engines) and in the reference.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
import sqlite3
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads.errors import QueryError, SourceError
from leads.formats import read_records
from leads.search.corpus import (
    Corpus,
    author_key,
    build_corpus,
    language_code,
)
from leads.search.corpus_cli import corpus_group
from leads.search.query import And, DateRange, Node, Not, Or, Term, parse, to_pubmed
from leads.vocab.mesh import STOPWORDS, Descriptor, Mesh

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HAYSTACK = FIXTURES / "search" / "haystack_sample.jsonl"
ESTROGENS = FIXTURES / "project" / "estrogens_150.jsonl"
PUBMED_XML = sorted((FIXTURES / "formats" / "pubmed_xml").glob("efetch_pubmed_xml_*.xml"))
MEDLINE = [
    FIXTURES / "formats" / "medline" / "efetch_pubmed_medline_4-records_2008.txt",
    FIXTURES / "formats" / "medline" / "pubmed_30922926_modern.nbib",
]
SOURCES = [HAYSTACK, ESTROGENS, *PUBMED_XML, *MEDLINE]

# --------------------------------------------------------------------------------------------
# The reference: documents read independently, leaves decided per document


@dataclass
class Heading:
    name: str
    descriptor: Descriptor | None
    major: bool
    qualifiers: list[tuple[str, bool]]  # (qualifier, heading/qualifier pair is major)


@dataclass
class RefDoc:
    id: str
    pmid: str | None
    title: str
    year: int | None
    language: str | None
    doi: str | None
    columns: dict[str, list[str]]  # column -> tokens
    headings: list[Heading]
    pubtypes: list[Descriptor | str]
    authors: list[str] = field(default_factory=list)


def fold(text: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    ).lower()


def tokens(text: str | None) -> list[str]:
    return re.findall(r"[^\W_]+", fold(text or ""))


def pubtype(mesh: Mesh, name: str) -> Descriptor | str:
    for d in mesh.lookup(name):
        if any(t.startswith("V") for t in d.tree_numbers):
            return d
    return name


def reference_docs(mesh: Mesh) -> list[RefDoc]:
    docs: dict[str, RefDoc] = {}

    def add(
        doc_id: str,
        pmid: str | None,
        title: str | None,
        abstract: str | None,
        year: int | None,
        *,
        headings: list[Heading],
        keywords: Sequence[str] = (),
        pubtypes: Sequence[str] = (),
        authors: Sequence[str] = (),
        journal: str | None = None,
        language: str | None = None,
        doi: str | None = None,
    ) -> None:
        if doc_id in docs:
            return  # the first occurrence wins
        mesh_text = " ".join(" ".join([h.name, *(q for q, _ in h.qualifiers)]) for h in headings)
        docs[doc_id] = RefDoc(
            id=doc_id,
            pmid=pmid,
            title=title or "",
            year=year,
            language=language_code(language),
            doi=doi,
            columns={
                "title": tokens(title),
                "abstract": tokens(abstract),
                "keywords": tokens("; ".join(keywords)),
                "mesh": tokens(mesh_text),
                "pubtypes": tokens("; ".join(pubtypes)),
                "authors": tokens("; ".join(authors)),
                "journal": tokens(journal),
            },
            headings=headings,
            pubtypes=[pubtype(mesh, p) for p in pubtypes],
            authors=[author_key(a) for a in authors],
        )

    for line in HAYSTACK.read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        headings = [Heading(h, mesh.descriptor(h), False, []) for h in obj["mesh"]]
        add(
            obj["doc_id"],
            obj["pmid"],
            obj["title"],
            obj["abstract"],
            obj["year"],
            headings=headings,
        )
    for path in [ESTROGENS, *PUBMED_XML, *MEDLINE]:
        for r in read_records(path):
            headings = [
                Heading(
                    m.descriptor,
                    (mesh.descriptor(m.ui) if m.ui else None) or mesh.descriptor(m.descriptor),
                    m.major or bool(m.major_qualifiers),
                    [(q, m.major or q in m.major_qualifiers) for q in m.qualifiers],
                )
                for m in r.mesh
            ]
            doc_id = r.pmid or (f"doi:{r.doi}" if r.doi else None)
            assert doc_id is not None
            add(
                doc_id,
                r.pmid,
                r.title,
                r.abstract,
                r.year,
                headings=headings,
                keywords=r.keywords,
                pubtypes=r.publication_types,
                authors=r.authors,
                journal=r.journal,
                language=r.language,
                doi=r.doi,
            )
    return list(docs.values())


FIELD_COLUMNS = {
    "tiab": ("title", "abstract", "keywords"),
    "ti": ("title",),
    "ab": ("abstract",),
    "tw": ("title", "abstract", "keywords", "mesh", "pubtypes"),
    "ot": ("keywords",),
    "nm": ("mesh",),
    "all": ("title", "abstract", "keywords", "mesh", "pubtypes", "authors", "journal"),
}


class Reference:
    def __init__(self, mesh: Mesh, docs: list[RefDoc]) -> None:
        self.mesh = mesh
        self.docs = docs

    def search(self, node: Node) -> set[str]:
        return {d.id for d in self.docs if self.match(node, d)}

    def match(self, node: Node, doc: RefDoc) -> bool:
        if isinstance(node, And):
            return all(self.match(item, doc) for item in node.items)
        if isinstance(node, Or):
            return any(self.match(item, doc) for item in node.items)
        if isinstance(node, Not):
            return self.match(node.left, doc) and not self.match(node.right, doc)
        if isinstance(node, DateRange):
            return (
                doc.year is not None and node.first_day().year <= doc.year <= node.last_day().year
            )
        assert isinstance(node, Term)
        return self.term(node, doc)

    def text(self, term: Term, doc: RefDoc, columns: tuple[str, ...]) -> bool:
        wanted = tokens(term.text)
        if not wanted:
            return False
        for column in columns:
            have = doc.columns[column]
            if term.proximity is not None:
                places = [[i for i, t in enumerate(have) if t == w] for w in wanted]
                if all(places) and any(
                    max(c) - min(c) - 1 <= term.proximity for c in itertools.product(*places)
                ):
                    return True
                continue
            n = len(wanted)
            for start in range(len(have) - n + 1):
                window = have[start : start + n]
                if window[:-1] == wanted[:-1] and (
                    window[-1].startswith(wanted[-1])
                    if term.truncated
                    else window[-1] == wanted[-1]
                ):
                    return True
        return False

    def under(self, d: Descriptor | None, ancestor: Descriptor) -> bool:
        return d is not None and self.mesh.is_descendant(d, ancestor)

    def term(self, term: Term, doc: RefDoc) -> bool:
        f = term.field
        if f in FIELD_COLUMNS:
            return self.text(term, doc, FIELD_COLUMNS[f])
        if f is None:
            return self.untagged(term, doc)
        if f in ("mh", "majr"):
            return self.mesh_term(term, doc)
        if f == "pt":
            if term.truncated:
                return any(
                    fold(p if isinstance(p, str) else p.name).startswith(fold(term.text))
                    for p in doc.pubtypes
                )
            q = pubtype(self.mesh, term.text)
            return any(
                (p == q.casefold() if isinstance(q, str) else False)
                if isinstance(p, str)
                else (not isinstance(q, str) and self.under(p, q))
                for p in doc.pubtypes
            )
        if f == "au":
            key = author_key(term.text, query=True)
            if term.truncated:
                return any(a.startswith(key) for a in doc.authors)
            if " " in key:
                return any(a.startswith(key) for a in doc.authors)
            return any(a == key or a.startswith(key + " ") for a in doc.authors)
        if f == "la":
            return doc.language == language_code(term.text)
        if f == "pmid":
            return doc.pmid in term.text.replace(",", " ").split()
        if f == "doi":
            return doc.doi == term.text.lower()
        if f == "sh":
            return any(fold(q) == fold(term.text) for h in doc.headings for q, _ in h.qualifiers)
        raise AssertionError(term)

    def mesh_term(self, term: Term, doc: RefDoc) -> bool:
        major = term.field == "majr"
        heading, sub = term.heading, term.subheading
        q = None if term.truncated else self.mesh.descriptor(heading)
        for h in doc.headings:
            if term.truncated:
                name = h.descriptor.name if h.descriptor else h.name
                hit = fold(name).startswith(fold(heading))
            elif q is None:
                hit = h.descriptor is None and h.name.casefold() == heading.casefold()
            elif term.noexp:
                hit = h.descriptor == q
            else:
                hit = self.under(h.descriptor, q)
            if not hit:
                continue
            if sub is not None:
                if any(fold(qn) == fold(sub) and (pm or not major) for qn, pm in h.qualifiers):
                    return True
            elif h.major or not major:
                return True
        return False

    def all_words(self, words: list[str], doc: RefDoc) -> bool:
        kept = [w for w in words if tokens(w)]
        content = [w for w in kept if fold(w) not in STOPWORDS]
        kept = content or kept
        return bool(kept) and all(
            self.text(Term(w, "all", phrase=True), doc, FIELD_COLUMNS["all"]) for w in kept
        )

    def untagged(self, term: Term, doc: RefDoc) -> bool:
        if term.phrase or term.truncated:
            return self.text(term, doc, FIELD_COLUMNS["all"])
        if self.all_words(term.text.split(" "), doc):
            return True
        q = self.mesh.descriptor(term.text)
        if q is None:
            return False
        if self.all_words(re.findall(r"[^\W_]+", q.name), doc):
            return True

        def mapped(d: Descriptor | None) -> bool:
            if d is None:
                return False
            return self.under(d, q) or any(self.under(a, q) for a in self.mesh.actions_of(d))

        return any(mapped(h.descriptor) for h in doc.headings) or any(
            not isinstance(p, str) and self.under(p, q) for p in doc.pubtypes
        )


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def mesh() -> Mesh:
    return Mesh.load()


@pytest.fixture(scope="module")
def corpus_path(tmp_path_factory: pytest.TempPathFactory, mesh: Mesh) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "small.db"
    build_corpus(SOURCES, path, mesh=mesh)
    return path


@pytest.fixture(scope="module")
def corpus(corpus_path: Path, mesh: Mesh) -> Iterator[Corpus]:
    with Corpus(corpus_path, mesh=mesh) as c:
        yield c


@pytest.fixture(scope="module")
def reference(mesh: Mesh) -> Reference:
    return Reference(mesh, reference_docs(mesh))


def ids(corpus: Corpus, query: str | Node, engine: str = "python") -> set[str]:
    return {h.id for h in corpus.search(query, engine=engine)}  # type: ignore[arg-type]


def check(corpus: Corpus, reference: Reference, query: str) -> set[str]:
    node = parse(query)
    expected = reference.search(node)
    assert ids(corpus, query) == expected, query
    assert ids(corpus, query, "sql") == expected, query
    assert corpus.count(query) == len(expected)
    return expected


# --------------------------------------------------------------------------------------------
# Building


def test_build_reads_every_source(corpus: Corpus, reference: Reference) -> None:
    assert len(corpus) == len(reference.docs)
    assert {h.id for h in corpus.search('"Humans"[mh] OR NOT_A_WORD_xq')} <= {
        d.id for d in reference.docs
    }
    doc = corpus.get("22663011")
    assert doc is not None
    assert (
        doc["language"] == "eng" and doc["doi"] and "Randomized Controlled Trial" in doc["pubtypes"]
    )
    pmc = next(d for d in reference.docs if d.id.startswith("PMC"))
    assert corpus.get(pmc.id) is not None  # haystack doc_id kept as the id


def test_unresolved_and_renamed_headings(corpus_path: Path, corpus: Corpus) -> None:
    with sqlite3.connect(corpus_path) as conn:
        rows = dict(conn.execute("SELECT name, ui FROM descriptor"))
    assert rows["NA"] is None  # not a MeSH 2024 heading: kept by name
    assert rows["Glycated Hemoglobin"] == "D006442"  # written "Glycated Hemoglobin A"
    assert corpus.count('"NA"[mh]') >= 1
    assert (
        corpus.count('"Glycated Hemoglobin A"[mh]') == corpus.count("Glycated Hemoglobin[mh]") > 0
    )


def test_haystack_headings_with_marks_and_duplicates(tmp_path: Path, mesh: Mesh) -> None:
    lines = [
        {"doc_id": "a1", "pmid": "1", "title": "Alpha trial", "abstract": None,
         "mesh": ["*Estrogens/therapeutic use", "Humans", "Dementia/*drug therapy"], "year": 2001},
        {"doc_id": "a2", "pmid": "2", "title": "Beta trial", "abstract": "Beta.",
         "mesh": ["Estrogens"], "year": 2002},
        {"doc_id": "a1", "pmid": "1", "title": "Duplicate", "abstract": None, "mesh": [], "year": 1},
    ]  # fmt: skip
    source = tmp_path / "h.jsonl.gz"
    with gzip.open(source, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    stats = build_corpus([source], tmp_path / "h.db", mesh=mesh)
    assert (stats.records, stats.duplicates) == (2, 1)
    with Corpus(tmp_path / "h.db", mesh=mesh) as c:
        assert ids(c, "Estrogens[majr]") == {"a1"}  # starred heading
        assert ids(c, "Estrogens[mh]") == {"a1", "a2"}  # a2: stars elsewhere in the file, not here
        assert ids(c, "Dementia[majr]") == {"a1"}  # a starred qualifier makes the heading major
        assert ids(c, "Dementia/drug therapy[majr]") == {"a1"}
        assert ids(c, "Estrogens/therapeutic use[majr]") == {"a1"}
        assert ids(c, "Humans[majr]") == set()
        assert ids(c, "therapeutic use[sh]") == {"a1"}
        assert ids(c, "Duplicate[ti]") == set()  # the first a1 won


def test_failed_build_leaves_the_old_corpus(tmp_path: Path, mesh: Mesh) -> None:
    out = tmp_path / "c.db"
    build_corpus([ESTROGENS], out, mesh=mesh)
    before = out.read_bytes()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"doc_id": "x", "title": "ok"}\n{not json\n', encoding="utf-8")
    with pytest.raises(SourceError, match="line 2"):
        build_corpus([ESTROGENS, bad], out, mesh=mesh)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(SourceError, match="not found"):
        build_corpus([tmp_path / "missing.jsonl"], out, mesh=mesh)


def test_opening_something_else_fails(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(SourceError, match="not a leads corpus"):
        Corpus(other)
    with pytest.raises(SourceError, match="not found"):
        Corpus(tmp_path / "nothing.db")


def test_old_schema_asks_for_a_rebuild(tmp_path: Path, mesh: Mesh) -> None:
    out = tmp_path / "old.db"
    build_corpus([ESTROGENS], out, mesh=mesh)
    with sqlite3.connect(out) as conn:
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(
        SourceError, match=r"corpus schema '1'.*rebuild it with `leads corpus build`"
    ):
        Corpus(out, mesh=mesh)


# --------------------------------------------------------------------------------------------
# Results: rowid arrays and the --json document


def test_matches_are_sorted_rowids_for_both_engines(corpus: Corpus) -> None:
    query = '(hypertension[tiab] OR "Humans"[mh]) NOT estrogen*[tiab]'
    found = corpus.matches(query)
    assert found.dtype == np.int64 and found.size > 20
    assert found.tolist() == sorted(corpus.rowids(query))
    assert corpus.matches(query, engine="sql").tolist() == found.tolist()
    assert corpus.count(query) == corpus.count(query, engine="sql") == found.size
    assert corpus.matches("NOT_A_WORD_xq[tiab]").size == 0


def test_results_json_escapes_titles_and_keeps_the_order(tmp_path: Path, mesh: Mesh) -> None:
    titles = [
        'Quotes "inside", a back\\slash and a tab\there',
        "Ünïcødé — α-blockers ≥ 5 mg; 日本語",
        "Line\nbreak and a control \x01 character",
        None,  # no title: "" in the results
        "Plain trial",
    ]
    lines: list[dict[str, Any]] = [
        {"doc_id": f"d{i}", "pmid": str(100 + i) if i % 2 == 0 else None, "title": t,
         "abstract": "Trial of drugs.", "mesh": [], "year": 2000 + i}
        for i, t in enumerate(titles)
    ]  # fmt: skip
    source = tmp_path / "titles.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    build_corpus([source], tmp_path / "t.db", mesh=mesh)
    expected = [
        {"id": f"d{i}", "pmid": str(100 + i) if i % 2 == 0 else None, "title": t or ""}
        for i, t in enumerate(titles)
    ]
    with Corpus(tmp_path / "t.db", mesh=mesh) as c:
        found = c.matches("drugs[tiab]")
        assert found.tolist() == [1, 2, 3, 4, 5]
        assert json.loads(c.results_json(found)) == expected
        document = b"".join(c.iter_json(found))
        assert document.endswith(b"}\n")
        assert json.loads(document) == {"count": 5, "results": expected}
        # Any order and chunking: the pieces concatenate to the same array.
        reverse = found[::-1]
        for chunk in (1, 2, 100):
            pieces = list(c.iter_results_json(reverse, chunk=chunk))
            assert json.loads(b"".join(pieces)) == expected[::-1]
        assert c.results_json([]) == "[]"
        assert json.loads(b"".join(c.iter_json([]))) == {"count": 0, "results": []}
        with pytest.raises(SourceError, match="1 of the rowids asked for are not in the corpus"):
            c.results_json([1, 99])
        with pytest.raises(ValueError, match="chunk"):
            list(c.iter_results_json([1], chunk=0))


# --------------------------------------------------------------------------------------------
# PubMed semantics, case by case


def test_tiab_words_phrases_and_truncation(corpus: Corpus, reference: Reference) -> None:
    words = check(corpus, reference, "estrogen[tiab]")
    plural = check(corpus, reference, "estrogens[tiab]")
    truncated = check(corpus, reference, "estrogen*[tiab]")
    assert words and plural and words | plural <= truncated and truncated != words
    both = check(corpus, reference, "blood[tiab] AND pressure[tiab]")
    phrase = check(corpus, reference, '"blood pressure"[tiab]')
    assert phrase and phrase <= both
    assert check(corpus, reference, "blood pressure[tiab]") == phrase  # tagged words: a phrase
    assert check(corpus, reference, '"blood pressur*"[tiab]') >= phrase
    assert check(corpus, reference, "double-blind[tiab]") == check(
        corpus, reference, '"double blind"[tiab]'
    )
    title = check(corpus, reference, "hypertension[ti]")
    assert title and title <= check(corpus, reference, "hypertension[tiab]")
    check(corpus, reference, "hypertension[ab] NOT hypertension[ti]")
    check(corpus, reference, '"blood pressure"[tiab:~2]')


def test_mesh_explosion(corpus: Corpus, reference: Reference) -> None:
    exploded = check(corpus, reference, '"Cardiovascular Diseases"[mh]')
    only = check(corpus, reference, '"Cardiovascular Diseases"[mh:noexp]')
    assert len(exploded) > len(only) + 20  # Hypertension, Myocardial Infarction... are below
    assert check(corpus, reference, "Hypertension[mh]") <= exploded
    # Entry terms resolve: "Heart Attack" is Myocardial Infarction.
    assert (
        check(corpus, reference, '"heart attack"[mh]')
        == check(corpus, reference, '"Myocardial Infarction"[mh]')
        != set()
    )
    # [mh] is the tree only; Nifedipine is a calcium channel blocker by pharmacological action.
    tree = check(corpus, reference, '"Calcium Channel Blockers"[mh]')
    nifedipine = check(corpus, reference, 'Nifedipine[mh] NOT "Calcium Channel Blockers"[mh]')
    assert nifedipine and not nifedipine & tree
    untagged = check(corpus, reference, "calcium channel blockers")
    assert nifedipine <= untagged and tree <= untagged
    check(corpus, reference, "Hypertens*[mh]")
    check(corpus, reference, "Animals[mh] NOT Humans[mh]")


def test_major_topics_qualifiers_and_publication_types(
    corpus: Corpus, reference: Reference
) -> None:
    assert check(corpus, reference, "Dementia[majr]") == {"35830032"}
    assert check(corpus, reference, "Humans[majr]") == set()
    assert "35830032" in check(corpus, reference, "Humans[mh]")
    assert check(corpus, reference, "Dementia/drug therapy[mh]") == {"35830032"}
    check(corpus, reference, "drug therapy[sh]")
    check(corpus, reference, "Cryopreservation/methods[majr]")
    trials = check(corpus, reference, "clinical trial[pt]")
    assert "22663011" in trials  # Clinical Trial, Phase III and RCT are below Clinical Trial
    reviews = check(corpus, reference, "review[pt]")
    assert "35830032" in reviews  # typed Review
    assert "38909159" not in reviews  # Systematic Review is V03.850, not below Review (V02.600.500)
    assert check(corpus, reference, "systematic review[pt]") == {"38909159"}
    check(corpus, reference, "journal article[pt] NOT review[pt]")


def test_dates_languages_authors_identifiers(corpus: Corpus, reference: Reference) -> None:
    years = check(corpus, reference, "1995:1999[dp]")
    assert years and years == check(corpus, reference, "1995/03/01:1999/06[dp]")
    assert check(corpus, reference, "2012[dp]") >= {"22663011"}
    assert check(corpus, reference, '"2008/03/01"[edat] : "3000"[edat]') == check(
        corpus, reference, "2008:3000[dp]"
    )
    assert check(corpus, reference, "english[la]") == check(corpus, reference, "eng[la]") != set()
    assert check(corpus, reference, "Flaherty KT[au]") == {"22663011"}
    assert check(corpus, reference, "flaherty[au]") == {"22663011"}
    assert check(corpus, reference, "flaherty k[au]") == {"22663011"}
    assert check(corpus, reference, "flaherty j[au]") == set()
    assert check(corpus, reference, "Webb CM[au]") != set()  # "C M Webb" in the Cohen CSV form
    check(corpus, reference, "web*[au]")
    assert check(corpus, reference, "22663011[pmid]") == {"22663011"}
    assert check(corpus, reference, "22663011 35830032[pmid]") == {"22663011", "35830032"}
    doi = corpus.get("22663011")["doi"]  # type: ignore[index]
    assert check(corpus, reference, f'"{doi}"[doi]') == {"22663011"}


def test_untagged_terms_map_to_mesh(corpus: Corpus, reference: Reference) -> None:
    words = check(corpus, reference, "heart[all] AND attack[all]")
    mapped = check(corpus, reference, "heart attack")
    infarction = check(corpus, reference, '"Myocardial Infarction"[mh]')
    assert infarction and infarction <= mapped and words <= mapped
    # Quoted or truncated: no mapping, all fields as a phrase.
    assert check(corpus, reference, '"heart attack"') == check(
        corpus, reference, '"heart attack"[all]'
    )
    check(corpus, reference, "estrogens")
    check(corpus, reference, "quality of life")
    check(corpus, reference, "randomized controlled trial")
    # A hyphenated heading name typed as is: its words also count one by one (found by hypothesis).
    hyphenated = check(corpus, reference, "Single-Blind Method")
    assert hyphenated > check(corpus, reference, "Single-Blind[all] AND Method[all]")


def test_not_and_left_to_right(corpus: Corpus, reference: Reference) -> None:
    a, b, c = "hypertension[tiab]", "diabetes[tiab]", "placebo[tiab]"
    left = check(corpus, reference, f"{a} OR {b} AND {c}")
    assert left == check(corpus, reference, f"({a} OR {b}) AND {c}")
    right = check(corpus, reference, f"{a} OR ({b} AND {c})")
    assert left != right  # no precedence: PubMed reads left to right
    assert check(corpus, reference, f"{a} NOT {c}") == check(corpus, reference, a) - check(
        corpus, reference, c
    )
    assert check(corpus, reference, f"{a} NOT {c} OR {b}") == (
        check(corpus, reference, f"{a} NOT {c}") | check(corpus, reference, b)
    )


def test_unsupported_and_bad_queries(corpus: Corpus) -> None:
    with pytest.raises(QueryError) as error:
        corpus.search("estrogen AND medline[sb]")
    assert error.value.position == len("estrogen AND medline")
    with pytest.raises(QueryError, match="#2"):
        corpus.search("#2 AND estrogen")
    with pytest.raises(QueryError) as error:
        corpus.search("estrogen AND (random*[tiab]")
    assert error.value.position == 13


def test_explain(corpus: Corpus) -> None:
    text = corpus.explain("estrogens AND random*[tiab] AND 1990:2000[edat]")
    assert "FTS5 MATCH" in text and "postings mesh[" in text and "INTERSECT" in text
    assert "Estrogens (D004967)" in text and "publication year" in text


def test_bm25(corpus: Corpus, reference: Reference) -> None:
    doc = next(d for d in reference.docs if d.pmid == "22663011")
    ranked = corpus.search_bm25(doc.title, 5)
    assert ranked[0][0].id == "22663011"
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
    assert corpus.search_bm25("the of and", 5) == []


def test_author_key() -> None:
    for name in ("Webb, C M", "C M Webb", "Webb CM", "Webb, Christopher M.", "C. M. Webb"):
        assert author_key(name) == "webb cm", name
    assert author_key("D de Zeigler") == "de zeigler d"
    assert author_key("Yki-Järvinen, Hannele") == "yki-jarvinen h"
    assert author_key("smith ja", query=True) == "smith ja"
    assert author_key("van der berg", query=True) == "van der berg"
    assert language_code("English") == "eng" and language_code(" FRE ") == "fre"


# --------------------------------------------------------------------------------------------
# Random queries: the corpus (both engines) against the reference


def vocabulary(reference: Reference) -> dict[str, list[str]]:
    words: set[str] = set()
    pairs: set[str] = set()
    for d in reference.docs:
        title = [t for t in d.columns["title"] if t.isascii() and t.isalpha()]
        words.update(title)
        pairs.update(f"{a} {b}" for a, b in itertools.pairwise(title))
    headings = sorted(
        {h.descriptor.name for d in reference.docs for h in d.headings if h.descriptor}
    )
    mesh = reference.mesh
    parents = sorted({p.name for name in headings[:80] for p in mesh.parents(name)})
    authors = sorted({a for d in reference.docs for a in d.authors if a and _is_term(a, "au")})
    return {
        "words": sorted(w for w in words if w not in ("and", "or", "not"))[:600],
        "pairs": sorted(pairs)[:400],
        "headings": [*headings, *parents, "NA", "Glycated Hemoglobin A"],
        "authors": authors,
    }


def _is_term(text: str, field_name: str | None) -> bool:
    try:
        Term(text, field_name)
    except QueryError:
        return False
    return True


@st.composite
def queries(draw: st.DrawFn, vocab: dict[str, list[str]], depth: int = 0) -> Node:
    if depth < 3 and draw(st.integers(0, 2)) == 0:
        kind = draw(st.sampled_from(["and", "or", "not"]))
        left = draw(queries(vocab, depth + 1))
        right = draw(queries(vocab, depth + 1))
        if kind == "not":
            return Not(left, right)
        return And((left, right)) if kind == "and" else Or((left, right))
    leaf = draw(
        st.sampled_from(
            ["word", "word", "phrase", "trunc", "mh", "mh", "untagged", "date", "pt", "au", "la"]
        )
    )
    if leaf in ("word", "phrase", "trunc"):
        field_name = draw(st.sampled_from(["tiab", "ti", "ab", "tw", "all", None]))
        if leaf == "phrase":
            return Term(draw(st.sampled_from(vocab["pairs"])), field_name, phrase=True)
        word = draw(st.sampled_from(vocab["words"]))
        if leaf == "trunc":
            return Term(word[: max(3, len(word) - 2)], field_name, truncated=True)
        return Term(word, field_name)
    if leaf == "untagged":
        untagged = [h.replace(",", "") for h in vocab["headings"]]
        return Term(draw(st.sampled_from([h for h in untagged if _is_term(h, None)])), None)
    if leaf == "mh":
        name = draw(st.sampled_from(vocab["headings"]))
        field_name = draw(st.sampled_from(["mh", "mh", "majr"]))
        if draw(st.integers(0, 5)) == 0:
            return Term(name[:5], field_name, truncated=True)
        return Term(name, field_name, phrase=True, noexp=draw(st.booleans()))
    if leaf == "date":
        start = draw(st.integers(1985, 2012))
        return DateRange(str(start), str(start + draw(st.integers(0, 8))))
    if leaf == "pt":
        return Term(
            draw(st.sampled_from(["clinical trial", "review", "journal article", "letter"])), "pt"
        )
    if leaf == "au":
        author = draw(st.sampled_from(vocab["authors"]))
        return Term(author.split(" ")[0] if draw(st.booleans()) else author, "au")
    return Term(draw(st.sampled_from(["eng", "english", "fre"])), "la")


def test_random_queries_match_the_reference(corpus: Corpus, reference: Reference) -> None:
    vocab = vocabulary(reference)
    seen_nonempty = 0

    @given(queries(vocab))
    @settings(
        max_examples=250,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    def run(node: Node) -> None:
        nonlocal seen_nonempty
        expected = reference.search(node)
        text = to_pubmed(node)
        assert ids(corpus, node) == expected, text
        assert ids(corpus, text, "sql") == expected, text
        seen_nonempty += bool(expected)

    run()
    assert seen_nonempty > 50  # the queries are not vacuous


# --------------------------------------------------------------------------------------------
# The command line


def test_cli_build_and_search_json(tmp_path: Path, corpus: Corpus) -> None:
    runner = CliRunner()
    out = tmp_path / "cli.db"
    result = runner.invoke(corpus_group, ["build", *map(str, SOURCES), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "records" in result.output and out.exists()
    query = "hypertension[tiab] OR estrogen*[tiab]"
    result = runner.invoke(corpus_group, ["search", str(out), query, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert set(payload) == {"count", "results"}
    assert payload["count"] == len(payload["results"]) == corpus.count(query) > 20
    assert [r["id"] for r in payload["results"]] == [h.id for h in corpus.search(query)]
    assert all(set(r) == {"id", "pmid", "title"} for r in payload["results"])
    pmc = [r for r in payload["results"] if r["id"].startswith("PMC")]
    assert all(r["pmid"] is None for r in pmc)
    result = runner.invoke(corpus_group, ["search", str(out), query, "--limit", "3"])
    assert (
        result.exit_code == 0 and f"{payload['count']:,} matches (first 3 shown)" in result.output
    )
    result = runner.invoke(
        corpus_group, ["search", str(out), "Humans[mh]", "--explain", "--limit", "1"]
    )
    assert result.exit_code == 0 and "postings mesh[" in result.output


def test_cli_bad_query_exits_1(corpus_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        corpus_group, ["search", str(corpus_path), "estrogen AND (random*", "--json"]
    )
    assert result.exit_code == 1
    assert "unbalanced '('" in result.output and "position 13" in result.output
    result = runner.invoke(corpus_group, ["search", str(corpus_path), "x[bogus]"])
    assert result.exit_code == 1 and "unknown field tag" in result.output
    result = runner.invoke(corpus_group, ["search", str(corpus_path.with_name("none.db")), "x"])
    assert result.exit_code == 1 and "not found" in result.output
