"""Classic trial-results extraction: tables, sentences, group sizes, grounding, engine wiring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leads.engines.classic import ClassicEngine, implementations
from leads.eval.extraction_results import read_article
from leads.extract.results import (
    extract_results,
    infer_outcome_type,
    remember_document,
    results_contract,
)
from leads.extract.results_doc import doc_view, forget_documents
from leads.tasks import TrialResultsTask
from leads.tasks.extraction import Group, ResultsInput, ResultsOutput

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "extract" / "results"


def groups(intervention: str, comparator: str) -> list[Group]:
    return [Group(id="intervention", title=intervention), Group(id="comparator", title=comparator)]


def arms(output: ResultsOutput) -> dict[str, dict[str, float | None]]:
    return {a.group_id: {"events": a.events, "n": a.group_size, "mean": a.mean, "sd": a.sd} for a in output.arms}


def assert_grounded(output: ResultsOutput, text: str) -> None:
    quotes = [e for a in output.arms for e in a.evidence] + [e for v in output.values for e in v.evidence]
    assert quotes, "every extracted number carries its quote"
    for e in quotes:
        assert text[e.start:e.end] == e.quote


TAB_TEXT = """Results

Pain fell in both groups; responders were more frequent with drug A (Table 2).

Table 2 Outcomes at 12 weeks
Outcome\tDrug A (n = 40)\tPlacebo (n = 38)\tP
Pain score, mean (SD)\t3.1 (1.2)\t4.5 (1.6)\t0.01
Responders, n (%)\t22 (55.0)\t12 (31.6)\t0.04
"""


def test_tab_separated_table_without_a_document() -> None:
    forget_documents()
    base = dict(text=TAB_TEXT, groups=groups("drug A", "placebo"))
    pain = extract_results(ResultsInput(outcome="pain score", outcome_type="continuous", **base)).output
    assert arms(pain) == {"intervention": {"events": None, "n": 40, "mean": 3.1, "sd": 1.2},
                          "comparator": {"events": None, "n": 38, "mean": 4.5, "sd": 1.6}}
    responders = extract_results(ResultsInput(outcome="responders", outcome_type="binary", **base)).output
    assert arms(responders)["intervention"]["events"] == 22 and arms(responders)["intervention"]["n"] == 40
    assert arms(responders)["comparator"]["events"] == 12 and arms(responders)["comparator"]["n"] == 38
    assert_grounded(responders, TAB_TEXT)


def test_outcome_type_is_inferred() -> None:
    assert infer_outcome_type("mortality at 28 days") == "binary"
    assert infer_outcome_type("mean pain score") == "continuous"
    out = extract_results(ResultsInput(text=TAB_TEXT, outcome="Responders", groups=groups("drug A", "placebo")))
    assert out.output.outcome_type == "binary"


def test_sentence_values_follow_their_arm() -> None:
    text = ("Adverse events were reported by 220/339 patients (desvenlafaxine, 69/115 [60.0%]; "
            "fluoxetine, 72/112 [64.3%]; and placebo, 79/112 [70.5%]).")
    out = extract_results(ResultsInput(text=text, outcome="adverse events", outcome_type="binary",
                                       groups=groups("fluoxetine", "placebo"))).output
    assert arms(out)["intervention"] == {"events": 72, "n": 112, "mean": None, "sd": None}
    assert arms(out)["comparator"] == {"events": 79, "n": 112, "mean": None, "sd": None}
    assert_grounded(out, text)


def test_respectively_list_with_a_third_arm() -> None:
    text = ("The duration of illness was longer with juice; the mean +/- SD duration in hours was "
            "49.4 \u00b1 32.6, 47.5 \u00b1 38.9 and 26.5 \u00b1 27.4 in AJ, WGJ and WA respectively.")
    out = extract_results(ResultsInput(text=text, outcome="duration of the illness", outcome_type="continuous",
                                       groups=groups("White Grape Juice (WGJ)", "flavored water (WA)"))).output
    assert (arms(out)["intervention"]["mean"], arms(out)["intervention"]["sd"]) == (47.5, 38.9)
    assert (arms(out)["comparator"]["mean"], arms(out)["comparator"]["sd"]) == (26.5, 27.4)


def test_versus_pair_with_one_arm_named() -> None:
    text = ("Significantly more patients in the intervention group continued antidepressants until the 6 month "
            "follow-up (86/125 vs 78/133, p < 0.05).")
    out = extract_results(ResultsInput(text=text, outcome="continued antidepressants", outcome_type="binary",
                                       groups=groups("person-centred consultations", "treatment as usual"))).output
    assert arms(out)["intervention"]["events"] == 86 and arms(out)["intervention"]["n"] == 125
    assert arms(out)["comparator"]["events"] == 78 and arms(out)["comparator"]["n"] == 133


def test_later_time_point_of_one_arm_wins() -> None:
    text = ("In patients without VAP, mean \u00b1 SD length of stay did not change between periods 1 and 2 in the "
            "intervention group (9.3 \u00b1 11.9 days vs. 9.9 \u00b1 14.8 days, respectively, P = 0.5), whereas it "
            "decreased in the control group (11.3 \u00b1 13.0 days vs. 9.1 \u00b1 9.9 days respectively, P <0.001).")
    out = extract_results(ResultsInput(text=text, outcome="length of stay", outcome_type="continuous",
                                       groups=groups("interrupted surveillance", "continuous surveillance"))).output
    assert (arms(out)["intervention"]["mean"], arms(out)["intervention"]["sd"]) == (9.9, 14.8)
    assert (arms(out)["comparator"]["mean"], arms(out)["comparator"]["sd"]) == (9.1, 9.9)


def test_total_sample_is_not_an_arm_size() -> None:
    text = ("The PURSUIT trial randomised 10,948 patients with acute coronary syndromes to receive eptifibatide "
            "or placebo. Death or myocardial infarction occurred in 14.2% versus 15.7%.")
    out = extract_results(ResultsInput(text=text, outcome="death or myocardial infarction", outcome_type="binary",
                                       groups=groups("eptifibatide", "placebo"))).output
    assert arms(out)["intervention"] == {"events": None, "n": None, "mean": None, "sd": None}
    assert arms(out)["comparator"]["n"] is None


def test_single_group_before_after_uses_the_sample_size() -> None:
    text = ("A quasi experimental trial of 19 males was done with selected asanas for three months. "
            "Pain intensity before intervention ranged from three to eight with median of six.")
    out = extract_results(ResultsInput(text=text, outcome="pain", outcome_type="continuous",
                                       groups=groups("post-Yoga", "pre-Yoga"))).output
    assert arms(out)["intervention"]["n"] == 19 and arms(out)["comparator"]["n"] == 19
    assert arms(out)["intervention"]["mean"] is None


def test_se_is_kept_and_sd_derived_with_its_formula() -> None:
    text = ("Change in CDRS-R score at week 8 (adjusted mean [standard error]) was \u221222.6 [1.17] with "
            "desvenlafaxine (n = 115) and \u221223.1 [1.18] with placebo (n = 112).")
    out = extract_results(ResultsInput(text=text, outcome="change in CDRS-R score", outcome_type="continuous",
                                       groups=groups("desvenlafaxine", "placebo"))).output
    arm = {a.group_id: a for a in out.arms}["intervention"]
    assert (arm.mean, arm.se, arm.sd, arm.group_size) == (-22.6, 1.17, None, 115)
    derived = {d.field: d for d in arm.derived}
    assert derived["sd"].value == pytest.approx(1.17 * 115 ** 0.5)
    assert "6.5.2.2" in derived["sd"].formula


def test_median_is_not_a_mean() -> None:
    text = ("Time to discharge was median 7 (IQR 5\u20139) days with drug A (n = 30) and median 9 (IQR 6\u201312) "
            "days with placebo (n = 30).")
    out = extract_results(ResultsInput(text=text, outcome="time to discharge", outcome_type="continuous",
                                       groups=groups("drug A", "placebo"))).output
    arm = {a.group_id: a for a in out.arms}["intervention"]
    assert (arm.mean, arm.median, arm.q1, arm.q3) == (None, 7, 5, 9)
    assert out.param_type == "MEDIAN"
    assert {d.field for d in arm.derived} == {"mean", "sd"}
    assert all("Wan" in d.formula for d in arm.derived)


def fixture_item(pmcid: int) -> dict[str, object]:
    return next(i for i in json.loads((FIXTURES / "items.json").read_text()) if i["pmcid"] == pmcid)


def test_binary_fixture_from_a_pmc_table() -> None:
    item = fixture_item(4450164)
    doc = read_article(FIXTURES / "PMC4450164.xml")
    remember_document(doc)
    out = extract_results(ResultsInput(text=doc.text, outcome=str(item["outcome"]), outcome_type="binary",
                                       groups=groups(str(item["intervention"]), str(item["comparator"])))).output
    assert arms(out)["intervention"]["events"] == item["intervention_events"] == 8
    assert arms(out)["intervention"]["n"] == item["intervention_group_size"] == 20
    assert arms(out)["comparator"]["events"] == item["comparator_events"] == 13
    assert arms(out)["comparator"]["n"] == item["comparator_group_size"] == 44
    assert_grounded(out, doc.text)
    assert any("Partial obstruction" in e.quote for e in out.values[0].evidence)


def test_continuous_fixture_picks_the_post_intervention_columns() -> None:
    item = fixture_item(3751573)
    doc = read_article(FIXTURES / "PMC3751573.xml")
    choice = extract_results(ResultsInput(text=doc.text, outcome=str(item["outcome"]), outcome_type="continuous",
                                          groups=groups(str(item["intervention"]), str(item["comparator"]))),
                             document=doc)
    got = arms(choice.output)
    assert (got["intervention"]["mean"], got["intervention"]["sd"], got["intervention"]["n"]) == (117.63, 19.01, 19)
    assert (got["comparator"]["mean"], got["comparator"]["sd"], got["comparator"]["n"]) == (158.52, 23.19, 23)
    assert choice.output.time_frame == "T1"
    assert_grounded(choice.output, doc.text)


def test_document_tables_are_used_when_registered() -> None:
    doc = read_article(FIXTURES / "PMC3751573.xml")
    forget_documents()
    assert doc_view(doc.text, doc).source == "document"
    remember_document(doc)
    assert doc_view(doc.text).source == "document"
    forget_documents()
    assert doc_view(doc.text).source != "document"


def test_classic_engine_runs_the_task() -> None:
    assert "results" in implementations()
    task = TrialResultsTask()
    engine = ClassicEngine()
    result = engine.run(task, {"text": TAB_TEXT, "outcome": "pain score", "outcome_type": "continuous",
                               "groups": [{"id": "OG000", "title": "Drug A"}, {"id": "OG001", "title": "Placebo"}]})
    output = result.output
    assert isinstance(output, ResultsOutput)
    assert output.param_type == "MEAN" and output.denominators == {"OG000": 40, "OG001": 38}
    assert [v.number for v in output.values] == [3.1, 4.5]
    assert result.model.startswith("classic/results/")


def test_contract_json() -> None:
    out = extract_results(ResultsInput(text=TAB_TEXT, outcome="Responders", outcome_type="binary",
                                       groups=groups("drug A", "placebo"))).output
    data = results_contract(out)
    assert data["outcome_type"] == "binary"
    assert {k: data["intervention"][k] for k in ("events", "group_size", "mean", "sd")} == {
        "events": 22, "group_size": 40, "mean": None, "sd": None}
    assert data["comparator"]["events"] == 12
    assert data["evidence"] and all(TAB_TEXT[e["start"]:e["end"]] == e["quote"] for e in data["evidence"])
    by_field = {(e.get("arm"), e.get("field")): e["quote"] for e in data["evidence"]}
    assert by_field[("intervention", "events")] == "22 (55.0)"
    assert by_field[("comparator", "group_size")] == "n = 38"
    json.dumps(data)


def test_contract_feeds_the_meta_analysis_adapter() -> None:
    from leads.synthesis.adapters import study_from_extraction

    out = extract_results(ResultsInput(text=TAB_TEXT, outcome="Responders", outcome_type="binary",
                                       groups=groups("drug A", "placebo"))).output
    study = study_from_extraction({**results_contract(out), "study_id": "tab"})
    assert (study.treatment.events, study.treatment.total, study.control.events, study.control.total) == (22, 40, 12, 38)
    assert study.treatment.sources["events"][0].quote == "22 (55.0)"


def test_nothing_found_is_an_explicit_none() -> None:
    text = "Adiponectin increased after red wine (Fig. 1). No table reports the values."
    out = extract_results(ResultsInput(text=text, outcome="adiponectin", outcome_type="continuous",
                                       groups=groups("red wine", "control"))).output
    assert all(v.value is None for v in out.values)
    assert "no table row or sentence" in out.notes[0]


def test_shipped_sentence_model_links_values_to_arms() -> None:
    from leads.extract.numbers import find_all
    from leads.extract.results_evidence import _mentions
    from leads.extract.results_match import ArmMatcher, ArmQuery
    from leads.extract.results_model import ResultSentenceModel

    model = ResultSentenceModel.load()
    text = "The mean survival over 6 months was 157+/-52 days in the levosimendan group and 139+/-64 days in the dobutamine group."
    _, spans = model.tag(text)
    assert {s.label for s in spans} >= {"MEAS", "INTV"}
    assert any("157" in text[s.start:s.end] for s in spans if s.label == "MEAS")
    matcher = ArmMatcher([ArmQuery("a", "levosimendan", "intervention"), ArmQuery("b", "dobutamine", "comparator")])
    stats = [s for s in find_all(text) if s.kind == "mean_sd"]
    links = model.assign(text, stats, _mentions(text, matcher), matcher, "__other__")
    assert [links[id(s)][0] for s in stats] == ["a", "b"]


@pytest.mark.shared
def test_training_command_builds_a_loadable_model(shared_data: Path, tmp_path: Path) -> None:
    from leads.extract.results_model import ResultSentenceModel
    from leads.extract.train_results import cross_validate, load_examples, train

    examples = load_examples(shared_data)
    assert len(examples) == 326
    assert sum(len(e.links) for e in examples) > 700
    small = examples[:60]
    train(small, tmp_path)
    model = ResultSentenceModel.load(tmp_path)
    assert model.tag("Mortality was 12% in the drug group and 20% in the placebo group.")[1]
    report = cross_validate(small, folds=2)
    assert 0.0 < report["spans"]["MEAS"]["f1"] <= 1.0
    assert report["link_accuracy"]["values"] > 0


def test_results_input_for_a_read_document() -> None:
    from leads.extract.results import results_input

    doc = read_article(FIXTURES / "PMC4450164.xml")
    forget_documents()
    inp = results_input(doc, intervention="internal drainage group", comparator="stentless cases",
                        outcome="ureteropelvic junction obstruction", outcome_type="binary")
    assert [g.id for g in inp.groups] == ["intervention", "comparator"]
    assert doc_view(inp.text).source == "document"
    result = ClassicEngine().run(TrialResultsTask(), inp)
    data = results_contract(result.output)
    assert (data["intervention"]["events"], data["intervention"]["group_size"]) == (8, 20)
    assert (data["comparator"]["events"], data["comparator"]["group_size"]) == (13, 44)
