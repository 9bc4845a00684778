"""Classic search query generation (leads.search.generate) and the `leads query` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from leads.engines import FakeBackend, LLMEngine, get_engine
from leads.errors import LeadsError
from leads.eval.search import MemoryCorpus, protocol_input
from leads.search.generate import (
    RCT_FILTER,
    GenerationOptions,
    _stem,
    generate_query,
    rct_filter_node,
    read_criteria,
)
from leads.search.query import And, Or, Term, iter_leaves, parse, to_pubmed
from leads.search.query_cli import query_command
from leads.tasks import TASKS
from leads.tasks.search_query import QueryInput
from leads.vocab.mesh import Mesh

PROTOCOLS = Path(__file__).resolve().parents[1] / "fixtures" / "search" / "protocols"

# The review question of the Cohen "Estrogens" topic (Nelson HD et al., JAMA 2002: postmenopausal
# hormone replacement therapy, benefits and harms).
ESTROGENS_PICO = QueryInput(
    population="postmenopausal women",
    intervention="hormone replacement therapy",
    comparison="placebo or no treatment",
    outcome="breast cancer, coronary heart disease, stroke, osteoporotic fractures",
)


@pytest.fixture(scope="module")
def mesh() -> Mesh:
    return Mesh.load()


def leaves(query: str) -> set[str]:
    return {to_pubmed(leaf) for leaf in iter_leaves(parse(query))}


# ---- the query --------------------------------------------------------------------------------


def test_estrogens_review_question() -> None:
    g = generate_query(ESTROGENS_PICO)
    node = parse(g.query)
    assert node == g.node and to_pubmed(node) == g.query
    # (P) AND (I): the placebo comparator and the outcomes are not ANDed.
    assert isinstance(node, And) and len(node.items) == 2
    assert g.facets == ["population", "intervention"]
    terms = leaves(g.query)
    assert '"Hormone Replacement Therapy"[mh]' in terms
    assert '"Estrogen Replacement Therap*"[tiab]' in terms  # narrower heading, as words
    assert "postmenopausal*[tiab]" in terms  # the person word "women" is not required
    assert not any("Breast Neoplasms" in t for t in terms)
    assert any("placebo" in n and "not searched" in n for n in g.notes)
    assert any(n.startswith("outcome not ANDed") and "Breast Neoplasms" in n for n in g.notes)


def test_estrogens_as_a_drug_class() -> None:
    g = generate_query(QueryInput(intervention="estrogens"))
    terms = leaves(g.query)
    assert '"Estrogens"[mh]' in terms and "Estrogen*[tiab]" in terms
    # Members by pharmacological action (Estradiol is not in the Estrogens tree in MeSH 2024).
    assert '"Estradiol"[mh]' in terms and "Estradiol[tiab]" in terms
    assert '"Conjugated Estrogens"[tiab]' in terms  # "Estrogens, Conjugated (USP)" put in order
    related = [t for t in g.terms if t.kind == "related_therapy"]
    assert '"Estrogen Replacement Therapy"[mh]' in {t.term for t in related}
    assert all(t.via == "Estrogens" for t in related)


@pytest.mark.parametrize(
    ("intervention", "heading", "drugs"),
    [
        ("ACE inhibitors", "Angiotensin-Converting Enzyme Inhibitors",
         ["Captopril", "Enalapril", "Lisinopril", "Ramipril"]),
        ("beta blockers", "Adrenergic beta-Antagonists", ["Propranolol", "Atenolol", "Metoprolol"]),
        ("calcium channel blockers", "Calcium Channel Blockers",
         ["Nifedipine", "Amlodipine", "Verapamil", "Diltiazem"]),
        ("atypical antipsychotics", "Antipsychotic Agents", ["Clozapine", "Risperidone", "Olanzapine"]),
        ("NSAIDs", "Anti-Inflammatory Agents, Non-Steroidal", ["Ibuprofen", "Naproxen", "Celecoxib"]),
        ("oral hypoglycemics", "Hypoglycemic Agents", ["Metformin", "Glipizide", "Pioglitazone"]),
        ("antihistamines", "Histamine Antagonists", ["Loratadine", "Cetirizine"]),
    ],
)
def test_drug_class_adds_member_drugs(intervention: str, heading: str, drugs: list[str]) -> None:
    g = generate_query(QueryInput(intervention=intervention))
    terms = leaves(g.query)
    assert f'"{heading}"[mh]' in terms
    by_term = {t.term: t for t in g.terms}
    for drug in drugs:
        assert f'"{drug}"[mh]' in terms and f"{drug}[tiab]" in terms
        source = by_term[f'"{drug}"[mh]']
        assert source.kind == "drug" and source.via == heading
        assert source.element == "intervention" and source.matched is not None


def test_beta_blockers_found_through_word_subset() -> None:
    # "beta blockers" is no MeSH term; "beta-Blockers, Adrenergic" of Adrenergic beta-Antagonists is.
    g = generate_query(QueryInput(intervention="beta blockers"))
    mesh_terms = [t for t in g.terms if t.kind == "mesh"]
    assert [t.descriptor for t in mesh_terms] == ["Adrenergic beta-Antagonists"]
    assert mesh_terms[0].matched == "beta blockers"


def test_salt_names_and_drug_combinations() -> None:
    terms = leaves(generate_query(QueryInput(intervention="atypical antipsychotics")).query)
    assert '"Quetiapine Fumarate"[mh]' in terms and "Quetiapine[tiab]" in terms
    ccb = leaves(generate_query(QueryInput(intervention="calcium channel blockers")).query)
    assert '"Magnesium Sulfate"[tiab]' in ccb and "Magnesium[tiab]" not in ccb
    assert '"Amlodipine Besylate, Olmesartan Medoxomil Drug Combination"[mh]' in ccb
    assert not any("Drug Combination" in t and "[tiab]" in t for t in ccb)


def test_condition_drugs_becomes_condition_facet() -> None:
    g = generate_query(QueryInput(intervention="ADHD drugs"))
    assert g.facets == ["population"]
    terms = leaves(g.query)
    assert '"Attention Deficit Disorder with Hyperactivity"[mh]' in terms and "ADHD[tiab]" in terms
    assert not any("Pharmaceutical Preparations" in t for t in terms)
    assert any("drug restriction is left to screening" in n for n in g.notes)


def test_specific_comparator_is_anded() -> None:
    g = generate_query(QueryInput(population="adults with type 2 diabetes", intervention="metformin",
                                  comparison="sulfonylureas"))
    assert g.facets == ["population", "intervention", "comparison"]
    node = parse(g.query)
    assert isinstance(node, And) and len(node.items) == 3
    terms = leaves(g.query)
    assert '"Diabetes Mellitus, Type 2"[mh]' in terms and '"Metformin"[mh]' in terms
    assert '"Sulfonylurea Compounds"[mh]' in terms
    assert not any('"Adult"' in t for t in terms)  # age groups are not searched


def test_criteria_route_by_category_and_skip_exclusions() -> None:
    g = generate_query(QueryInput(criteria=[
        "Randomised trials in adults with type 2 diabetes.",
        "Studies of metformin monotherapy.",
        "We excluded studies of pregnant women with gestational diabetes.",
    ]))
    assert g.facets == ["population", "intervention"]
    by_descriptor = {t.descriptor: t for t in g.terms if t.kind == "mesh"}
    assert by_descriptor["Diabetes Mellitus, Type 2"].facet == "population"
    assert by_descriptor["Metformin"].facet == "intervention"
    assert by_descriptor["Metformin"].criterion == 1
    assert "Diabetes, Gestational" not in by_descriptor


def test_outcome_alone_is_searched_and_outcome_facet_option() -> None:
    assert generate_query(QueryInput(outcome="stroke")).facets == ["outcome"]
    g = generate_query(ESTROGENS_PICO, GenerationOptions(outcome_facet=True))
    assert g.facets == ["population", "intervention", "outcome"]
    assert '"Breast Neoplasms"[mh]' in leaves(g.query)


def test_nothing_searchable_is_an_error() -> None:
    with pytest.raises(LeadsError, match="no searchable concept"):
        generate_query(QueryInput(intervention="the of and"))


def test_rct_filter_is_the_cochrane_hsss() -> None:
    assert RCT_FILTER == (
        '("randomized controlled trial"[pt] OR "controlled clinical trial"[pt] OR randomized[tiab] '
        'OR placebo[tiab] OR "drug therapy"[sh] OR randomly[tiab] OR trial[tiab] OR groups[tiab]) '
        "NOT (animals[mh] NOT humans[mh])"
    )
    g = generate_query(QueryInput(intervention="ACE inhibitors"), GenerationOptions(rct_filter=True))
    node = parse(g.query)
    assert isinstance(node, And) and node.items[-1] == rct_filter_node()
    assert g.topic_node is not None and g.topic_node == parse(
        generate_query(QueryInput(intervention="ACE inhibitors")).query)
    filters = [t for t in g.terms if t.kind == "filter"]
    assert {t.term for t in filters} == {to_pubmed(x) for x in iter_leaves(rct_filter_node())}


# ---- provenance -------------------------------------------------------------------------------


@pytest.mark.parametrize("inp", [
    ESTROGENS_PICO,
    QueryInput(intervention="calcium channel blockers", population="hypertension"),
    QueryInput(intervention="ADHD drugs"),
])
def test_every_term_has_its_source(inp: QueryInput, mesh: Mesh) -> None:
    g = generate_query(inp, GenerationOptions(rct_filter=True))
    rendered = [t.term for t in g.terms]
    assert len(rendered) == len(set(rendered))
    assert set(rendered) == leaves(g.query)
    for t in g.terms:
        assert t.element in {"population", "intervention", "comparison", "outcome", "criteria",
                             "filter"}
        assert t.kind in {"mesh", "entry_term", "narrower", "drug", "related_therapy", "free_text",
                          "filter"}
        if t.kind in {"mesh", "drug", "related_therapy", "narrower"}:
            d = mesh.descriptor(t.descriptor_ui or "")
            assert d is not None and d.name == t.descriptor
        if t.kind == "mesh":
            assert t.term == f'"{t.descriptor}"[mh]' and t.matched
        if t.kind == "free_text":
            assert t.descriptor is None and t.matched
        if t.element != "filter":
            assert t.facet in g.facets


# ---- splitting --------------------------------------------------------------------------------

DOCS = [
    {"doc_id": "1", "title": "Nifedipine versus amlodipine in hypertension", "abstract": "",
     "mesh": []},
    {"doc_id": "2", "title": "Calcium antagonists for high blood pressure", "abstract": "",
     "mesh": ["Hypertension", "Calcium Channel Blockers"]},
    {"doc_id": "3", "title": "Verapamil in angina", "abstract": "Patients with angina pectoris.",
     "mesh": ["Verapamil", "Angina Pectoris"]},
    {"doc_id": "4", "title": "Diltiazem after myocardial infarction",
     "abstract": "Blood pressure fell in hypertensive patients.", "mesh": ["Diltiazem"]},
    {"doc_id": "5", "title": "Exercise and essential hypertension", "abstract": "",
     "mesh": ["Hypertension", "Exercise"]},
    {"doc_id": "6", "title": "Zonisamide for epilepsy", "abstract": "In hypertension too.",
     "mesh": ["Zonisamide"]},
]


@pytest.mark.parametrize("max_length", [200, 400, 1000])
def test_subqueries_fit_and_their_union_is_the_query(max_length: int) -> None:
    corpus = MemoryCorpus(DOCS)
    inp = QueryInput(population="hypertension", intervention="calcium channel blockers")
    g = generate_query(inp, GenerationOptions(max_length=max_length))
    assert len(g.subqueries) > 1
    assert all(len(s) <= max_length for s in g.subqueries)
    whole = corpus.search(g.query)
    assert whole == {"1", "2", "6"}  # 4 lacks the word "hypertension"
    union: set[str] = set()
    for sub in g.subqueries:
        union |= corpus.search(sub)
    assert union == whole
    ctgov = g.ctgov()
    assert len(ctgov) >= 1 and all("query.term" in q.params for q in ctgov)


@pytest.mark.slow
def test_deterministic_in_process_and_across_hash_seeds() -> None:
    a = generate_query(ESTROGENS_PICO)
    b = generate_query(ESTROGENS_PICO)
    assert a.query == b.query and a.terms == b.terms and a.subqueries == b.subqueries
    code = ("from leads.search.generate import generate_query;"
            "from leads.tasks.search_query import QueryInput;"
            "print(generate_query(QueryInput(intervention='calcium channel blockers',"
            " population='hypertension')).query)")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}) for seed in ("1", "2")]
    outs = {proc.communicate(timeout=120)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    assert outs == {generate_query(QueryInput(intervention="calcium channel blockers",
                                              population="hypertension")).query}


# ---- CLEF 2018 protocols ------------------------------------------------------------------------


@pytest.mark.parametrize(("topic", "expected"), [
    ("CD010276", ['"Mouth Neoplasms"[mh]', '"Leukoplakia"[mh]', '"Lichen Planus"[mh]']),
    ("CD010438", ['"Thrombelastography"[mh]', '"Hemorrhage"[mh]']),
    ("CD011134", ['"Colorectal Neoplasms"[mh]']),
])
def test_clef_protocols(topic: str, expected: list[str]) -> None:
    inp = protocol_input((PROTOCOLS / f"{topic}.xml").read_text(encoding="utf-8"))
    g = generate_query(inp)
    terms = leaves(g.query)
    for heading in expected:
        assert heading in terms
    assert parse(g.query) == g.node
    # The protocols' prose is not expanded into drug lists, and "TIC" (trauma-induced
    # coagulopathy) is not taken for Tics.
    assert not any(t.kind == "drug" for t in g.terms)
    assert '"Tics"[mh]' not in terms


# ---- truncation and criteria files --------------------------------------------------------------


@pytest.mark.parametrize(("word", "stem"), [
    ("Inhibitors", "Inhibitor"), ("therapies", "therap"), ("therapy", "therap"),
    ("beta-Blockers", "beta-Blocker"), ("cancer", "cancer"), ("women", None), ("ACE", None),
    ("mellitus", None), ("diabetes", None), ("drugs", None), ("McArdle", None),
])
def test_truncation_stem(word: str, stem: str | None) -> None:
    assert _stem(word) == stem


def test_read_criteria() -> None:
    text = "1. Adults with asthma\n- randomised trials\n\n  b) published in English  \n"
    assert read_criteria(text) == ["Adults with asthma", "randomised trials", "published in English"]
    prose = "First sentence here. " * 20
    assert len(read_criteria(prose)) == 20


# ---- engines and the command --------------------------------------------------------------------


def test_classic_engine_runs_the_generator() -> None:
    inp = QueryInput(intervention="ACE inhibitors")
    result = get_engine("classic").run(TASKS["search_query"], inp)
    assert result.output.query == generate_query(inp).query
    assert result.model is not None and result.model.startswith("classic/search_query/")


def test_cli_json_contract(tmp_path: Path) -> None:
    criteria = tmp_path / "criteria.txt"
    criteria.write_text("Women with menopausal hot flashes.\n"
                        "Exclude studies of women with breast cancer.\n", encoding="utf-8")
    result = CliRunner().invoke(query_command, [
        "--intervention", "estrogens", "--population", "postmenopausal women",
        "--criteria-file", str(criteria), "--rct-filter", "--ctgov", "--max-length", "800", "--json",
    ])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {"query", "subqueries", "terms", "notes", "engine", "ctgov"} <= set(out)
    assert out["engine"] == "classic"
    assert to_pubmed(parse(out["query"])) == out["query"]
    assert len(out["subqueries"]) > 1 and all(len(s) <= 800 for s in out["subqueries"])
    keys = {"term", "element", "facet", "kind", "descriptor", "descriptor_ui", "matched", "via",
            "criterion"}
    assert all(set(t) == keys for t in out["terms"])
    assert {t["term"] for t in out["terms"]} == leaves(out["query"])
    from_criteria = [t for t in out["terms"] if t["element"] == "criteria"]
    assert from_criteria and all(t["criterion"] == 0 for t in from_criteria)
    assert any(t["descriptor"] == "Hot Flashes" and t["facet"] == "population"
               for t in from_criteria)
    assert not any(t["descriptor"] == "Breast Neoplasms" for t in out["terms"])
    assert all("query.term" in q["params"] for q in out["ctgov"])
    assert not any("[pt]" in q["params"]["query.term"] for q in out["ctgov"])


def test_cli_text_and_errors() -> None:
    runner = CliRunner()
    result = runner.invoke(query_command, ["--intervention", "NSAIDs"])
    assert result.exit_code == 0 and '"Anti-Inflammatory Agents, Non-Steroidal"[mh]' in result.output
    result = runner.invoke(query_command, [])
    assert result.exit_code == 2 and "give at least one of" in result.output
    result = runner.invoke(query_command, ["--intervention", "of the"])
    assert result.exit_code == 1 and "no searchable concept" in result.output


def test_cli_other_engine_goes_through_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = FakeBackend(replies=[{"query": "(statin*[tiab] OR Hydroxymethylglutaryl-CoA "
                                             "Reductase Inhibitors[mh]) AND stroke[tiab]"}])
    engine = LLMEngine(backend, engine_name="fake")
    monkeypatch.setattr("leads.engines.get_engine", lambda name, **kw: engine)
    result = CliRunner().invoke(query_command, ["--intervention", "statins", "--outcome", "stroke",
                                                "--engine", "fake", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["engine"] == "fake"
    assert parse(out["query"]) == And((
        Or((Term("statin", "tiab", truncated=True),
            Term("Hydroxymethylglutaryl-CoA Reductase Inhibitors", "mh"))),
        Term("stroke", "tiab"),
    ))
    assert [t["kind"] for t in out["terms"]] == ["model"] * 3
    assert out["subqueries"] == [out["query"]]
    assert "Population: not specified" in backend.requests[0]["messages"][-1]["content"]
