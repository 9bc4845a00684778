"""Search evaluation (leads.eval.search): the in-memory evaluator, the metrics, the Ovid
translator and the Cohen/CLEF topics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from leads.errors import QueryError
from leads.eval.search import (
    COHEN_TOPICS,
    MemoryCorpus,
    SearchTopic,
    SqliteCorpus,
    clef_topics,
    cohen_topics,
    eval_search_command,
    evaluate_search,
    markdown_table,
    translate_ovid,
)
from leads.search.generate import generate_query
from leads.search.query import And, DateRange, Not, Or, Ref, Term, parse, to_pubmed
from leads.tasks.search_query import QueryInput

DOCS = [
    {"doc_id": "a", "pmid": "11", "title": "Nifedipine in hypertension",
     "abstract": "A randomised trial of nifedipine tablets.", "mesh": ["Nifedipine", "Hypertension"],
     "year": 1995},
    {"doc_id": "b", "pmid": "12", "title": "Blood pressure and calcium-channel blockers",
     "abstract": "Channel blockers lowered the pressure.", "mesh": ["Calcium Channel Blockers"],
     "year": 2001},
    {"doc_id": "c", "pmid": "13", "title": "Essential hypertension in rats",
     "abstract": "Animal model.", "mesh": ["Hypertension, Malignant", "Animals", "Rats"],
     "year": 2003},
    {"doc_id": "d", "pmid": None, "title": "Verapamil", "abstract": "Pressure fell with verapamil "
     "and the blood flow rose.", "mesh": [], "year": None},
]


@pytest.fixture(scope="module")
def corpus() -> MemoryCorpus:
    return MemoryCorpus(DOCS)


# ---- the in-memory evaluator ----------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), [
    ("nifedipine[tiab]", {"a"}),
    ("hypertension[ti]", {"a", "c"}),
    ("hypertension[ab]", set()),
    ('"calcium channel blockers"[tiab]', {"b"}),  # the hyphen is a word break on both sides
    ('"channel blocker*"[tiab]', {"b"}),
    ("random*[tiab]", {"a"}),
    ("pressure[tiab] NOT verapamil[tiab]", {"b"}),
    ("pressure[tiab] AND (nifedipine[tiab] OR verapamil[tiab])", {"d"}),
    ('"blood pressure"[tiab]', {"b"}),  # "blood flow ... pressure" in d is no phrase
    ('"pressure blood"[tiab:~5]', {"b", "d"}),  # any order, at most 5 words between
    ('"pressure blood"[tiab:~4]', {"b"}),
    ('"pressure blood"[tiab:~0]', {"b"}),
    ('"Hypertension"[mh]', {"a", "c"}),  # exploded: Hypertension, Malignant is under it
    ('"Hypertension"[mh:noexp]', {"a"}),
    ('"Dihydropyridines"[mh]', {"a"}),  # Nifedipine is a dihydropyridine
    ("nifedipine[tw]", {"a"}),
    ("rats", {"c"}),  # untagged: title, abstract and MeSH words
    ("11[pmid]", {"a"}),
    ("1990:2000[dp]", {"a"}),
])
def test_memory_corpus_semantics(corpus: MemoryCorpus, query: str, expected: set[str]) -> None:
    assert corpus.search(query) == expected


def test_memory_corpus_warns_for_missing_fields(corpus: MemoryCorpus) -> None:
    assert corpus.search('"randomized controlled trial"[pt] OR nifedipine[tiab]') == {"a"}
    assert corpus.warnings == ["[pt] matches nothing: the records carry no such field"]
    assert corpus.search('"Hypertension/drug therapy"[majr]') == {"a", "c"}
    assert len(corpus.warnings) == 2
    with pytest.raises(QueryError):
        corpus.search("#1 AND nifedipine[tiab]")


# ---- metrics ----------------------------------------------------------------------------------


class FixedBackend:
    """Returns a fixed result per query; knows which records it holds."""

    def __init__(self, results: dict[str, set[str]], holds: set[str]) -> None:
        self.results = results
        self.holds = holds
        self.queries: list[str] = []

    def search(self, query: str) -> set[str]:
        self.queries.append(query)
        return self.results.get(query, self.results.get("*", set()))

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self.holds


def test_recall_and_precision_arithmetic() -> None:
    backend = FixedBackend({"*": {"a", "b", "c", "d"}}, holds=set("abcdxyz"))
    topics = [
        SearchTopic("t1", QueryInput(intervention="nifedipine"), included=frozenset({"a", "b", "x"}),
                    topic_records=frozenset({"a", "c"})),
        SearchTopic("t2", QueryInput(intervention="verapamil"), included=frozenset({"d"})),
    ]
    ev = evaluate_search(topics, backend)
    t1, t2 = ev.topics
    assert (t1.retrieved, t1.included, t1.found) == (4, 3, 2)
    assert t1.recall == pytest.approx(2 / 3) and t1.precision == pytest.approx(2 / 4)
    assert t1.topic_precision == pytest.approx(2 / 4)
    assert (t2.found, t2.recall, t2.precision) == (1, 1.0, 0.25)
    s = ev.summary()
    assert s["micro_recall"] == pytest.approx(3 / 4)
    assert s["macro_recall"] == pytest.approx((2 / 3 + 1) / 2)
    assert s["micro_precision"] == pytest.approx(3 / 8)
    assert s["topics_recall_ge_0_9"] == 1 and s["min_recall"] == pytest.approx(2 / 3)
    # The query actually run is the classic generator's.
    assert '"Nifedipine"[mh]' in backend.queries[0]
    table = markdown_table(ev)
    assert "| t1 | 4 | 2/3 | 0.667 | 0.500 | 0.500 |" in table
    assert "| **all (micro)** | 8 | 3/4 | 0.750 | 0.375 |  |" in table


def test_candidates_baseline_and_availability() -> None:
    backend = FixedBackend({"*": {"a", "b", "c"}, "base[tiab]": {"a", "z", "q"}},
                           holds={"a", "b", "c", "z"})
    topic = SearchTopic("clef", QueryInput(intervention="nifedipine"),
                        included=frozenset({"a", "z", "w"}), candidates=frozenset({"a", "c", "z"}),
                        baseline_query="base[tiab]")
    (t,) = evaluate_search([topic], backend).topics
    # Included = {a, z} (w is no candidate); retrieved within the candidates = {a, c}.
    assert (t.retrieved, t.included, t.found, t.recall, t.precision) == (2, 2, 1, 0.5, 0.5)
    assert (t.baseline_retrieved, t.baseline_found) == (2, 2)
    assert (t.baseline_recall, t.baseline_precision) == (1.0, 1.0)
    # A corpus that holds too few of the included records cannot measure recall.
    scarce = FixedBackend({"*": {"a"}}, holds={"a"})
    (skipped,) = evaluate_search([SearchTopic("s", QueryInput(intervention="x ray"),
                                              included=frozenset({"a", "b", "c"}))], scarce).topics
    assert skipped.skipped == "the corpus holds 1 of the topic's 3 included records"
    assert skipped.recall is None


def test_subquery_union_is_checked(corpus: MemoryCorpus) -> None:
    topic = SearchTopic("ccb", QueryInput(intervention="calcium channel blockers"),
                        included=frozenset({"a", "b"}))
    (t,) = evaluate_search([topic], corpus, max_length=300).topics
    assert t.subqueries > 1 and t.subqueries_union_ok is True
    assert (t.found, t.retrieved) == (2, 3)  # a, b and d (verapamil)


# ---- Ovid -> PubMed -------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "expected"), [
    ("exp Renal Dialysis/", Term("Renal Dialysis", "mh", phrase=True)),
    ("Kidney Failure, Chronic/", Term("Kidney Failure, Chronic", "mh", phrase=True, noexp=True)),
    ("*Neoplasms/", Term("Neoplasms", "majr", phrase=True, noexp=True)),
    ("Dipyridamole/du [Diagnostic Use]",
     Term("Dipyridamole/diagnostic use", "mh", phrase=True, noexp=True)),
    ('exp "Sensitivity and Specificity"/', Term("Sensitivity and Specificity", "mh", phrase=True)),
    ("(hemodialysis or haemodialysis).tw.", Or((Term("hemodialysis", "tw"),
                                                Term("haemodialysis", "tw")))),
    ("(coronary adj5 disease).tw.", Term("coronary disease", "tiab", phrase=True, proximity=4)),
    ("(endstage kidney or endstage renal).ti,ab.",
     Or((Term("endstage kidney", "tiab", phrase=True), Term("endstage renal", "tiab", phrase=True)))),
    ("Diagnos$.mp.", Term("Diagnos", "tw", truncated=True)),
    ("(kidney and pancreas and (transplant$ or graft$)).tw.",
     And((Term("kidney", "tw"), Term("pancreas", "tw"),
          Or((Term("transplant", "tw", truncated=True), Term("graft", "tw", truncated=True)))))),
    ("or/1-3", Or((Ref(1), Ref(2), Ref(3)))),
    ("and/4,7", And((Ref(4), Ref(7)))),
    ("(3 or 4) and 5", And((Or((Ref(3), Ref(4))), Ref(5)))),
    ("exp animals/ not humans/", Not(Term("animals", "mh", phrase=True),
                                     Term("humans", "mh", phrase=True, noexp=True))),
    ("(2012* or 2013*).ed.", Or((DateRange("2012", "2012", "edat"),
                                 DateRange("2013", "2013", "edat")))),
])
def test_ovid_lines(line: str, expected: object) -> None:
    tr = translate_ovid(line)
    assert tr.statements[1] == expected
    # Alone, a line that combines earlier lines cannot be resolved; nothing else may fail.
    assert all("cannot resolve" in why for _, _, why in tr.failed)


def test_ovid_strategy_resolves_to_one_query() -> None:
    strategy = """Kidney Transplantation/
(renal adj3 transplant$).tw.
or/1-2
exp Echocardiography/
echocardiogr$.tw.
4 or 5
3 and 6
limit 7 to english language"""
    tr = translate_ovid(strategy)
    assert not tr.failed
    assert tr.query == (
        '("Kidney Transplantation"[mh:noexp] OR (renal[tw] AND transplant*[tw])) AND '
        '("Echocardiography"[mh] OR echocardiogr*[tw])'
    )
    assert "limit dropped: english language" in tr.notes
    assert any("adjN" in n for n in tr.notes)


def test_ovid_wildcards_and_failures() -> None:
    tr = translate_ovid("Man?euv$.mp.")
    assert tr.statements[1] == Term("Man", "tw", truncated=True)
    assert any("wildcards" in n for n in tr.notes)
    tr = translate_ovid("exp Heart/\n(heart or lung\n1 or 2")
    assert tr.node is None
    assert [(n, why) for n, _, why in tr.failed] == [
        (2, "unbalanced parenthesis"), (3, "cannot resolve: line 2 is needed but was not translated")]
    # A bare line is an Ovid .mp. search.
    tr = translate_ovid("heart attack")
    assert tr.node == Term("heart attack", "tw", phrase=True) and not tr.failed


def test_pubmed_history_lines_with_real_clef_defects() -> None:
    # From CLEF 2017 CD007394: a typographic opening quote, an unbalanced quote, "OR 6".
    strategy = """“Aspergillus"[MeSH]
"Aspergillosis"[MeSH]
aspergill*[tiab]
#1 OR #2 OR 3
Serology"[MeSH]
#4 AND #5"""
    tr = translate_ovid(strategy)
    assert not tr.failed
    assert tr.query == ('("Aspergillus"[mh] OR "Aspergillosis"[mh] OR aspergill*[tiab]) AND '
                        "Serology[mh]")
    assert parse(tr.query or "") == tr.node


# ---- the vendored haystack sample ----------------------------------------------------------------

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "search" / "haystack_sample.jsonl"
# Included studies (label_included == 1 in screening/cohen2006/<Topic>.csv) that the sample holds.
SAMPLE_INCLUDES = {
    "ADHD": {"12895137"},
    "AtypicalAntipsychotics": {"12084413", "12640214", "9988841"},
    "CalciumChannelBlockers": {"7786657", "9231814", "9809930"},
    "Estrogens": {"14519707", "8707404", "8794428", "8844631", "9158080"},
    "OralHypoglycemics": {"10454950", "12423711"},
}


@pytest.mark.skipif(not SAMPLE.exists(), reason="tests/fixtures/search/haystack_sample.jsonl absent")
def test_cohen_topics_over_the_haystack_sample(tmp_path: Path) -> None:
    sample = MemoryCorpus.from_jsonl(SAMPLE)
    topics = [SearchTopic(name, QueryInput(intervention=intervention),
                          included=frozenset(SAMPLE_INCLUDES[name]))
              for name, intervention, _ in COHEN_TOPICS if name in SAMPLE_INCLUDES]
    assert all(i in sample for t in topics for i in t.included)
    ev = evaluate_search(topics, sample, min_available=1.0)
    assert [t.found for t in ev.topics] == [len(t.included) for t in topics]
    assert all(0 < t.retrieved < len(sample) for t in ev.topics)
    # The SQLite corpus of leads.search.corpus, an independent evaluator, agrees record for record.
    corpus_module = pytest.importorskip("leads.search.corpus")
    corpus_module.build_corpus([SAMPLE], tmp_path / "sample.db")
    sqlite = SqliteCorpus(corpus_module.Corpus(tmp_path / "sample.db"))
    for _, intervention, _ in COHEN_TOPICS:
        query = generate_query(QueryInput(intervention=intervention)).query
        assert sqlite.search(query) == sample.search(query), intervention


# ---- shared data ------------------------------------------------------------------------------


@pytest.mark.shared
def test_clef_queries_translate(shared_data: Path) -> None:
    topics = clef_topics(shared_data)
    assert len(topics) == 80
    translated = [t for t in topics if t.baseline_query is not None]
    assert len(translated) >= 75
    for t in translated:
        assert to_pubmed(parse(t.baseline_query or "")) == t.baseline_query
        assert t.candidates and t.included


@pytest.fixture(scope="module")
def haystack(shared_data: Path) -> MemoryCorpus:
    return MemoryCorpus.from_jsonl(shared_data / "search" / "haystack_dev" / "haystack_dev.jsonl.gz")


@pytest.mark.shared
@pytest.mark.slow
def test_cohen_estrogens_end_to_end(shared_data: Path, haystack: MemoryCorpus) -> None:
    topics = [t for t in cohen_topics(shared_data) if t.name.startswith("Estrogens")]
    assert [t.name for t in topics] == ["Estrogens", "Estrogens+criteria"]
    assert len(topics[0].included) == 80 and topics[1].input.criteria
    ev = evaluate_search(topics, haystack, max_length=1000)
    for t in ev.topics:
        assert t.recall is not None and t.recall >= 0.95
        assert t.precision is not None and t.precision > 0.1
        assert t.subqueries > 1 and t.subqueries_union_ok is True


@pytest.mark.shared
@pytest.mark.slow
def test_clef_cannot_be_evaluated_on_haystack(shared_data: Path, haystack: MemoryCorpus) -> None:
    ev = evaluate_search(clef_topics(shared_data), haystack)
    assert ev.summary()["topics"] == 0
    assert all(t.skipped and "included records" in t.skipped for t in ev.topics)
    assert sum(t.available or 0 for t in ev.topics) <= 1


@pytest.mark.shared
@pytest.mark.slow
def test_eval_command_json(shared_data: Path) -> None:
    result = CliRunner().invoke(eval_search_command, [
        "--corpus", "haystack", "--topics", "cohen", "--topic", "NSAIDS",
        "--data", str(shared_data), "--json",
    ])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["summary"]["topics"] == 1
    (t,) = out["topics"]
    assert t["topic"] == "NSAIDS" and t["included"] == 39 and t["recall"] >= 0.9
