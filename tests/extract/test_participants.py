"""Participant statistics: number parsing, count candidates, the count model, the task, evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from leads.engines.classic import ClassicEngine
from leads.eval.extraction_pico import evaluate_participants
from leads.extract.participants import (
    ArmCount,
    CountModel,
    _assign_groups,
    analyse,
    classic_participants,
    count_candidates,
    describe_participants,
    parse_count,
)
from leads.extract.train_pico import count_examples, fit_count_model, read_pico_corpus
from leads.tasks.extraction import Group, ParticipantsInput, ParticipantStatisticsTask


@pytest.fixture(scope="module")
def corpus(fixtures: Path) -> Path:
    return fixtures / "extract" / "pico_corpus"


def _text(corpus: Path, pmid: str) -> str:
    return (corpus / f"{pmid}.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(("text", "value"), [
    ("120", 120), ("1,009", 1009), ("13 388", 13388), ("Twenty", 20), ("Eighty-six", 86),
    ("One hundred and seventy-six", 176), ("Three hundred thirty-five", 335), ("two thousand", 2000),
    ("2.5", None), ("12-18", None), ("tamoxifen", None), ("", None),
])
def test_parse_count(text: str, value: int | None) -> None:
    assert parse_count(text) == value


def test_count_candidates_cover_digits_words_and_spaced_thousands() -> None:
    text = ("A total of 13 388 women were randomised. One hundred and seventy-six patients received "
            "2.5 mg; 1,009 were analysed (p = 0.05, 95% CI).")
    found = {(text[c.start:c.end], c.value) for c in count_candidates(analyse(text))}
    assert ("13 388", 13388) in found
    assert ("One hundred and seventy-six", 176) in found
    assert ("1,009", 1009) in found
    assert all(value not in {2, 5, 0} for _t, value in found)  # no pieces of decimals


def test_describe_participants_on_real_abstracts(corpus: Path) -> None:
    summary = describe_participants(_text(corpus, "12377957"))
    assert summary.total == 1009
    assert [g.n for g in summary.groups] == [336, 336, 337]
    assert summary.groups[0].name == "TAM"
    text = _text(corpus, "12796608")
    summary = describe_participants(text)
    assert summary.total == 238
    assert [(g.n, g.type) for g in summary.groups] == [(121, "intervention"), (117, "control")]
    assert "anastrozole" in summary.groups[0].name and "tamoxifen" in summary.groups[1].name
    for ev in [*summary.total_evidence, *(e for g in summary.groups for e in g.evidence)]:
        assert text[ev.start:ev.end] == ev.quote


def test_age_and_sex_statistics() -> None:
    text = ("We enrolled 1578 patients (491 female, mean age 66.2 ± 8.1 years). In a second cohort, "
            "the median age was 55 years and 62% were women; patients were aged 43-61 years.")
    summary = describe_participants(text)
    age = {(s.kind, s.value) for s in summary.age}
    assert {("mean", 66.2), ("sd", 8.1), ("median", 55.0), ("min", 43.0), ("max", 61.0)} <= age
    sex = {(s.kind, s.value) for s in summary.sex}
    assert {("count_female", 491.0), ("percent_female", 62.0)} <= sex
    for stat in [*summary.age, *summary.sex]:
        assert stat.evidence and text[stat.evidence[0].start:stat.evidence[0].end] == stat.evidence[0].quote


def test_participants_task_counts_per_group(corpus: Path) -> None:
    text = _text(corpus, "12796608")
    inp = ParticipantsInput(text=text, measure="Overall Number of Participants", groups=[
        Group(id="BG000", title="Anastrozole", description="anastrozole 1 mg daily"),
        Group(id="BG001", title="Tamoxifen", description="tamoxifen 40 mg daily"),
        Group(id="BG002", title="Total"),
    ])
    out = classic_participants(inp)
    assert [(v.group_id, v.number) for v in out.values] == [("BG000", 121.0), ("BG001", 117.0), ("BG002", 238.0)]
    assert all(v.evidence and text[v.evidence[0].start:v.evidence[0].end] == v.evidence[0].quote
               for v in out.values)
    # Through the engine, with the call logged.
    engine = ClassicEngine()
    result = engine.run(ParticipantStatisticsTask(), inp)
    assert result.output == out
    assert engine.log.records[-1].model.startswith("classic/participants/")


def test_participants_task_reports_not_reported_as_none(corpus: Path) -> None:
    inp = ParticipantsInput(text=_text(corpus, "12796608"), measure="Body mass index",
                            param_type="MEAN", unit="kg/m2", groups=[Group(id="BG000", title="Total")])
    out = classic_participants(inp)
    assert out.values[0].value is None and out.values[0].evidence == []


def test_count_model_round_trip_and_cross_validation(corpus: Path, tmp_path: Path) -> None:
    docs = read_pico_corpus(corpus)
    assert len(docs) == 6 and docs[0].values("total-participants") == [20]
    feats, labels = [], []
    for doc in docs:
        _analysed, cands, f, gold = count_examples(doc)
        assert len(cands) == len(f) == len(gold)
        feats.extend(f)
        labels.extend(gold)
    assert {"total", "intervention", "control", "other"} == set(labels)
    model = fit_count_model(feats, labels)
    path = tmp_path / "counts.json"
    import json

    path.write_text(json.dumps(model.to_json()), encoding="utf-8")
    loaded = CountModel.load(path)
    assert loaded.classes == model.classes
    probabilities = loaded.predict(feats[:3])
    assert all(abs(sum(p.values()) - 1) < 1e-6 for p in probabilities)
    result = evaluate_participants(corpus, folds=2)
    assert result["abstracts"] == 6
    assert result["total"]["abstracts_with_gold"] == sum(1 for d in docs if d.values("total-participants"))
    assert 0 <= result["total"]["exact_first"] <= result["total"]["exact_any"] <= 1


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_participants_evaluation_on_the_dev_slice(shared_data: Path) -> None:
    # The first 80 abstracts (the full 199 with `leads eval participants` take ~5 min):
    # docs/benchmarks.md has 0.92 / 0.66 / 0.72 ("any") on all of them.
    result = evaluate_participants(shared_data / "pico" / "pico_corpus_dev", folds=4, limit=80)
    assert result["abstracts"] == 80
    assert result["total"]["exact_any"] > 0.7
    assert result["intervention"]["exact_any"] > 0.4
    assert result["control"]["exact_any"] > 0.4


def test_eval_commands_print_json(fixtures: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from click.testing import CliRunner

    from leads.eval.extraction_pico import eval_participants_command, eval_pico_command

    shared = tmp_path / "shared"
    shutil.copytree(fixtures / "extract" / "pico_corpus", shared / "pico" / "pico_corpus_dev")
    shutil.copy(fixtures / "extract" / "ebmnlp_sample.txt", shared / "pico" / "ebmnlp_dev.txt")
    details = tmp_path / "details.jsonl"
    result = CliRunner().invoke(eval_participants_command, [
        "--shared", str(shared), "--folds", "2", "--details", str(details), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert scores["abstracts"] == 6 and set(scores) >= {"total", "intervention", "control", "both_arms"}
    rows = [json.loads(line) for line in details.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 6 and {"pmid", "gold", "predicted"} <= set(rows[0])
    result = CliRunner().invoke(eval_pico_command, ["--shared", str(shared), "--folds", "2", "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert scores["abstracts"] == 6 and set(scores["per_class"]) == {"participants", "interventions", "outcomes"}
    missing = CliRunner().invoke(eval_pico_command, ["--shared", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0 and "EBM-NLP dev file is missing" in missing.output


def test_participants_task_maps_titled_groups_to_arms(fixtures: Path) -> None:
    """Groups titled "Intervention: <name>" / "Control: <name>" find their arms even when only
    one title names an arm of the paper (the other arm follows by elimination)."""
    text = (fixtures / "eval" / "pico_corpus" / "12393819.txt").read_text(encoding="utf-8")
    inp = ParticipantsInput(text=text, measure="Number of participants", groups=[
        Group(id="total", title="Total"),
        Group(id="intervention", title="Intervention: breast-conserving surgery"),
        Group(id="control", title="Control: radical mastectomy"),
    ])
    out = {v.group_id: v for v in classic_participants(inp).values}
    assert out["control"].number == 349.0 and "by name" in out["control"].note
    assert out["intervention"].number == 352.0 and "by elimination" in out["intervention"].note
    assert out["total"].number == 701.0


def _arm(name: str, kind: str, n: int) -> ArmCount:
    return ArmCount(name=name, type=kind, n=n, probability=0.9)


def test_assign_groups_by_name_role_and_order() -> None:
    arms = [_arm("surgery plus tamoxifen", "intervention", 239), _arm("tamoxifen alone", "control", 235)]
    # The closer name wins although both arms share "tamoxifen"; each arm is used once.
    assert _assign_groups([("Control: tamoxifen alone", ""), ("Intervention: surgery and tamoxifen", "")],
                          arms) == [(1, "name"), (0, "name")]
    # Unnamed arms: role words decide, then elimination.
    unnamed = [_arm("intervention group", "intervention", 30), _arm("control group", "control", 28)]
    assert _assign_groups([("Usual care", ""), ("Web-based coaching", "")], unnamed) == [
        (1, "role"), (0, "elimination")]
    # Nothing to go by: order of mention.
    assert _assign_groups([("A", "first"), ("B", "second")], unnamed) == [(0, "order"), (1, "order")]
    # More arms than groups and no clue: no guess.
    three = [*unnamed, _arm("third", "intervention", 5)]
    assert _assign_groups([("Alpha", ""), ("Beta", "")], three) == [(None, ""), (None, "")]
    assert _assign_groups([("Alpha", "")], []) == [(None, "")]
