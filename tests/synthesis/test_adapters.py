"""Getting data in: the trial-results task's output, the extract-results JSON, CSV/JSON files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leads.errors import FormatError, SourceError
from leads.synthesis import (
    BinaryStudy,
    ContinuousStudy,
    DataError,
    ExcludedStudy,
    StudyEffect,
    forest_plot,
    load_input,
    meta_analysis,
    parse_mean_sd,
    study_effect,
    study_from_extraction,
    study_from_results,
)
from leads.tasks.extraction import (
    Group,
    GroupValue,
    ResultsAnswer,
    ResultsInput,
    ResultsOutput,
    TrialResultsTask,
)

GROUPS = [Group(id="OG000", title="Remdesivir"), Group(id="OG001", title="Placebo")]


def beigel_output(fixtures: Path) -> tuple[str, ResultsOutput]:
    """The trial-results task's real grounding on a real excerpt (Beigel 2020, ACTT-1)."""
    text = (fixtures / "beigel2020_excerpt.md").read_text(encoding="utf-8")
    task = TrialResultsTask()
    inp = ResultsInput(text=text, outcome="All-cause mortality by day 29", groups=GROUPS)
    answer = ResultsAnswer(
        paramType="COUNT_OF_PARTICIPANTS", unitOfMeasure="Participants", timeFrame="Day 29",
        denomValue=["541", "521"],
        results=[{"title": "Remdesivir", "value": "59", "quote": "No. of deaths by day 29 59 77"},
                 {"title": "Placebo", "value": "77", "quote": "No. of deaths by day 29 59 77"}])
    return text, task.finish(answer, inp)


def test_results_output_to_binary_study_with_located_quotes(synthesis_fixtures: Path) -> None:
    text, output = beigel_output(synthesis_fixtures)
    study = study_from_results(output, study_id="Beigel 2020", treatment_group="OG000", control_group="OG001",
                               record_id=7262788, call_id=41, document="PMC7262788.md")
    assert isinstance(study, BinaryStudy)
    assert (study.treatment.events, study.treatment.total) == (59, 541)
    assert (study.control.events, study.control.total) == (77, 521)
    prov = study.treatment.sources["events"][0]
    assert prov.record_id == 7262788 and prov.call_id == 41 and prov.document == "PMC7262788.md"
    assert prov.start is not None and prov.end is not None
    assert text[prov.start:prov.end] == prov.quote and prov.quote.startswith("No. of deaths by day 29")
    assert study.treatment.sources["total"][0].note == "denominator of group OG000"
    # span -> effect -> pooled estimate, and onto the plot
    result = meta_analysis([study], "RR")
    effect = result.studies[0]
    assert effect.sources["treatment.events"][0] == prov
    assert round(effect.display_estimate, 2) == 0.74  # Cochrane CD014962: 0.74 [0.54, 1.01]
    assert result.primary.weights[0].study_id == "Beigel 2020"
    svg = forest_plot(result).decode()
    assert "No. of deaths by day 29" in svg and 'data-record-id="7262788"' in svg


def test_percentages_become_rounded_events_with_a_note() -> None:
    output = ResultsOutput(outcome="Mortality", param_type="PERCENT", unit="%", time_frame="", unit_of_denominator="",
                           denominators={"A": 541, "B": None},
                           values=[GroupValue(group_id="A", value="11.4", number=11.4),
                                   GroupValue(group_id="B", value="15.2", number=15.2)])
    study = study_from_results(output, study_id="s", treatment_group="A", control_group="B")
    assert isinstance(study, BinaryStudy)
    assert study.treatment.events == 62  # 11.4% of 541 = 61.67
    assert "rounded to 62" in (study.treatment.sources["events"][0].note or "")
    assert study.control.events is None  # no denominator: unknown, excluded later with the field named
    excluded = meta_analysis([study, study.model_copy(update={"study_id": "t", "control": study.treatment})],
                             "RR").excluded
    assert [(x.study_id, x.field) for x in excluded] == [("s", "control.events")]


def test_results_output_to_continuous_study() -> None:
    output = ResultsOutput(outcome="Pain (VAS)", param_type="MEAN", unit="mm", time_frame="", unit_of_denominator="",
                           denominators={"A": 60, "B": 58},
                           values=[GroupValue(group_id="A", value="34.1 (12.0)"),
                                   GroupValue(group_id="B", value="41.5 ± 13.2")])
    study = study_from_results(output, study_id="s", treatment_group="A", control_group="B")
    assert isinstance(study, ContinuousStudy)
    assert (study.treatment.mean, study.treatment.sd, study.treatment.n) == (34.1, 12.0, 60)
    assert (study.control.mean, study.control.sd) == (41.5, 13.2)
    plain = output.model_copy(update={"values": [GroupValue(group_id="A", value="34.1", number=34.1),
                                                 GroupValue(group_id="B", value="41.5", number=41.5)]})
    spread = output.model_copy(update={"values": [GroupValue(group_id="A", value="1.5", number=1.5),
                                                  GroupValue(group_id="B", value="1.7", number=1.7)]})
    with_se = study_from_results(plain, study_id="s", treatment_group="A", control_group="B",
                                 dispersion=spread, dispersion_type="SE")
    assert isinstance(with_se, ContinuousStudy)
    assert (with_se.treatment.se, with_se.treatment.sd) == (1.5, None)
    md = meta_analysis([with_se], "MD").studies[0]
    assert md.inputs["treatment.sd"] == pytest.approx(1.5 * 60**0.5)


def test_results_output_errors() -> None:
    median = ResultsOutput(outcome="LOS", param_type="MEDIAN", unit="days", time_frame="", unit_of_denominator="",
                           denominators={}, values=[])
    with pytest.raises(DataError, match="median"):
        study_from_results(median, study_id="s", treatment_group="A", control_group="B")
    number = median.model_copy(update={"param_type": "NUMBER"})
    with pytest.raises(DataError, match="pass kind="):
        study_from_results(number, study_id="s", treatment_group="A", control_group="B")
    counts = median.model_copy(update={"param_type": "COUNT_OF_PARTICIPANTS",
                                       "values": [GroupValue(group_id="A", value="3", number=3)]})
    with pytest.raises(DataError, match="no group 'B'"):
        study_from_results(counts, study_id="s", treatment_group="A", control_group="B")


@pytest.mark.parametrize(("text", "expected"), [
    ("12.3 (4.5)", (12.3, 4.5)), ("12.3 ± 4.5", (12.3, 4.5)), ("-1.2 +/- 0.4", (-1.2, 0.4)),
    ("7 (SD 2)", (7.0, 2.0)), ("7 [SD: 2.5]", (7.0, 2.5)), ("12.3", None), ("12.3 (10.1 to 14.5)", None),
    (None, None),
])
def test_parse_mean_sd(text: str | None, expected: tuple[float, float] | None) -> None:
    assert parse_mean_sd(text) == expected


def test_extract_results_contract_objects(tmp_path: Path) -> None:
    lines = [
        {"file": "trial_a.txt", "outcome": "Death", "outcome_type": "binary",
         "intervention": {"events": 12, "group_size": 100, "mean": None, "sd": None},
         "comparator": {"events": 20, "group_size": 98, "mean": None, "sd": None},
         "evidence": [{"field": "intervention.events", "quote": "12 of 100 died", "start": 5, "end": 19},
                      {"quote": "Overall mortality was lower"}]},
        {"file": "trial_b.txt", "outcome": "Death", "outcome_type": "binary",
         "intervention": {"events": 7, "group_size": 60}, "comparator": {"events": 9, "group_size": 61},
         "evidence": []},
    ]
    path = tmp_path / "extracted.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    data = load_input(path)
    first = data.studies[0]
    assert isinstance(first, BinaryStudy) and first.study_id == "trial_a.txt"
    assert first.treatment.sources["events"][0].quote == "12 of 100 died"
    assert first.treatment.sources["events"][0].document == "trial_a.txt"
    assert [p.quote for p in first.sources] == ["Overall mortality was lower"]
    assert data.outcome == "Death"
    result = meta_analysis(data, "OR")
    assert [s.study_id for s in result.studies] == ["trial_a.txt", "trial_b.txt"]
    assert result.studies[0].sources["study"][0].quote == "Overall mortality was lower"
    continuous = study_from_extraction({"outcome_type": "continuous",
                                        "intervention": {"mean": 5, "sd": 2, "group_size": 30},
                                        "comparator": {"mean": 6, "sd": 2, "group_size": 30}}, study_id="c")
    assert isinstance(continuous, ContinuousStudy) and continuous.control.n == 30
    with pytest.raises(ValueError, match="outcome_type"):
        study_from_extraction({"outcome_type": "ordinal"}, study_id="x")


def test_csv_columns_and_types(tmp_path: Path, synthesis_fixtures: Path) -> None:
    data = load_input(synthesis_fixtures / "remdesivir_cd014962.csv")  # llm-meta-analysis column names
    assert data.outcome == "All-cause mortality at up to day 28"
    assert data.studies[0].record_id == 7262788 and data.studies[0].type == "binary"
    mixed = tmp_path / "mixed.tsv"
    mixed.write_text("study\tm1i\tsd1i\tn1i\tm2i\tsd2i\tn2i\tmeasure\testimate\tci_lower\tci_upper\n"
                     "A\t5\t2\t20\t4\t2\t21\t\t\t\t\n"
                     "B\t\t\t\t\t\t\tMD\t0.8\t-0.2\t1.8\n", encoding="utf-8")
    loaded = load_input(mixed)
    assert [s.type for s in loaded.studies] == ["continuous", "generic"]
    result = meta_analysis(loaded, "MD")
    assert len(result.studies) == 2 and not result.excluded
    only = load_input(synthesis_fixtures / "remdesivir_cd014962.csv", outcome="MORTALITY")
    assert len(only.studies) == 4


def test_file_errors_name_file_row_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("study,events_t,total_t,events_c,total_c\nA,3,40,five,41\n", encoding="utf-8")
    with pytest.raises(FormatError) as info:
        load_input(bad)
    assert info.value.record == 1 and info.value.field == "events_c" and "bad.csv" in str(info.value)
    vague = tmp_path / "vague.csv"
    vague.write_text("study,notes\nA,nothing here\n", encoding="utf-8")
    with pytest.raises(FormatError, match="cannot tell whether the row is binary"):
        load_input(vague)
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"studies": [{"study_id": "A", "type": "binary",
                                                "treatment": {"events": -1, "total": 10},
                                                "control": {"events": 1, "total": 10}}]}), encoding="utf-8")
    with pytest.raises(FormatError) as info:
        load_input(invalid)
    assert info.value.record == 1 and info.value.field == "binary.treatment.events"
    with pytest.raises(SourceError, match="no such file"):
        load_input(tmp_path / "absent.csv")
    with pytest.raises(FormatError, match="no study has an outcome"):
        load_input(_ok(tmp_path), outcome="stroke")


def _ok(tmp_path: Path) -> Path:
    path = tmp_path / "ok.csv"
    path.write_text("study,outcome,events_t,total_t,events_c,total_c\nA,death,3,40,5,41\n", encoding="utf-8")
    return path


def test_json_input_round_trip(tmp_path: Path, synthesis_fixtures: Path) -> None:
    data = load_input(synthesis_fixtures / "bcg.csv")
    path = tmp_path / "bcg.json"
    path.write_text(data.model_dump_json(), encoding="utf-8")
    again = load_input(path)
    assert again == data
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([s.model_dump() for s in data.studies]), encoding="utf-8")
    assert load_input(listed).studies == data.studies


@pytest.mark.shared
def test_llm_meta_analysis_dev_rows_load(shared_data: Path) -> None:
    path = shared_data / "results" / "llm_meta_analysis_dev" / "annotated_rct_dataset_dev.csv"
    data = load_input(path)
    assert len(data.studies) == 43
    binary = [s for s in data.studies if s.type == "binary"]
    continuous = [s for s in data.studies if s.type == "continuous"]
    assert (len(binary), len(continuous)) == (11, 32)
    # each row is its own comparison: every one gives an effect or a recorded exclusion
    effects = {"binary": "OR", "continuous": "SMD"}
    outcomes = [study_effect(study, effects[study.type]) for study in data.studies]  # type: ignore[arg-type]
    usable = [o for o in outcomes if isinstance(o, StudyEffect)]
    excluded = [o for o in outcomes if isinstance(o, ExcludedStudy)]
    assert len(usable) + len(excluded) == 43 and usable and excluded
    assert all(x.field for x in excluded)
