"""Building instruction data from (a vendored slice of) the shared data, and from the real folder."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from leads.instruct import BuildOptions, build, read_examples
from leads.instruct.cli import instruct_group
from leads.instruct.sources.corpora import clean_span, detokenize, parse_count
from leads.instruct.sources.registry import nli4ct_results, render_study, study_candidates
from leads.tasks import TASKS

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "instruct" / "shared"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("instruct")
    result = build(BuildOptions(out=out, shared=FIXTURE, seed=0, test_fraction=0.3))
    return out, result.datasheet


def test_every_task_has_examples_from_its_sources(built: tuple[Path, dict]) -> None:
    _out, sheet = built
    counts = sheet["counts"]
    expected = {
        "eligibility": {"screening/cohen2006-estrogens", "screening/cdss-ro"},
        "search_query": {"search/clef-tar"},
        "arms": {"registry/ctgov-api"},
        "participants": {"registry/ctgov-api", "corpora/pico-corpus"},
        "results": {"registry/ctgov-api", "registry/nli4ct", "corpora/rct-art", "corpora/llm-meta-analysis"},
        "pico": {"corpora/ebm-nlp", "corpora/pico-corpus"},
        "characteristics": {"corpora/evidence-inference"},
    }
    for task, sources in expected.items():
        assert sources <= set(counts[task]), (task, counts.get(task))
    estrogens = counts["eligibility"]["screening/cohen2006-estrogens"]
    assert estrogens["train"] + estrogens["test"] == 11  # 12 rows, one without an abstract


def test_written_examples_validate_and_do_not_leak(built: tuple[Path, dict]) -> None:
    out, sheet = built
    train = list(read_examples(out / "train.jsonl"))
    test = list(read_examples(out / "test.jsonl"))
    assert len(train) == sheet["totals"]["train"] and len(test) == sheet["totals"]["test"] and test
    train_keys = {k for e in train for k in e.groups}
    assert not train_keys & {k for e in test for k in e.groups}
    splits = json.loads((out / "splits.json").read_text())
    assert not set(splits["train"]) & set(splits["test"])
    assert len({e.hash for e in train + test}) == len(train) + len(test)
    for example in train + test:
        task = TASKS[example.task]
        inp = task.validate_input(example.input)
        assert example.messages[:-1] == task.messages(inp)
        output = task.finish(task.parse_answer(example.messages[-1]["content"]), inp, strict_quotes=True)
        assert "unsupported_quotes" not in json.dumps(output.model_dump()) or \
            all(not v for v in _values(output.model_dump(), "unsupported_quotes"))
    md = (out / "datasheet.md").read_text()
    assert "| eligibility | screening/cdss-ro |" in md and "MIT" in md


def _values(data: object, key: str) -> list[object]:
    found: list[object] = []
    if isinstance(data, dict):
        for k, v in data.items():
            found.extend([v] if k == key else _values(v, key))
    elif isinstance(data, list):
        for item in data:
            found.extend(_values(item, key))
    return found


def test_label_only_eligibility_has_one_combined_criterion_and_no_invented_reason(built: tuple[Path, dict]) -> None:
    out, _sheet = built
    examples = [e for path in ("train.jsonl", "test.jsonl") for e in read_examples(out / path)
                if e.task == "eligibility"]
    verdicts = Counter()
    for example in examples:
        assert len(example.input["criteria"]) == 1
        assert example.input["criteria"][0]["text"].startswith("The study meets all of this review's")
        (evaluation,) = example.answer["evaluations"]
        assert evaluation["rationale"] == "" and evaluation["evidence"] == []
        verdicts[(example.source, evaluation["eligibility"])] += 1
    assert verdicts[("screening/cohen2006-estrogens", "YES")] == 4
    assert verdicts[("screening/cdss-ro", "YES")] == 3


def test_dedup_keeps_one_of_identical_inputs(tmp_path: Path) -> None:
    first = build(BuildOptions(out=tmp_path / "a", shared=FIXTURE, sources=["corpora/ebm-nlp"]))
    # The same source twice: every example is a duplicate of one already kept.
    from leads.instruct.build import _dedup

    unique, duplicates, conflicts = _dedup(first.examples + first.examples)
    assert len(unique) == len(first.examples) and duplicates == len(first.examples) and conflicts == 0


def test_registry_rendering_states_every_gold_value() -> None:
    study = json.loads((FIXTURE / "api_fixtures" / "ctgov" / "study_NCT02210780_with-results.json").read_text())
    text = render_study(study)
    assert "Experimental: Dupilumab 300 mg qw" in text
    candidates = list(study_candidates(study, "x"))
    kinds = Counter(c.task for c in candidates)
    assert kinds["arms"] == 1 and kinds["participants"] > 5 and kinds["results"] > 5
    age = next(c for c in candidates if c.task == "participants" and c.input.measure == "Age, Continuous")
    assert [r["value"] for r in age.answer["results"]] == ["39.9", "39.2", "39.6"]
    assert age.answer["results"][0]["quote"] in text


def test_nli4ct_outcome_with_categories_is_left_out() -> None:
    trial = {"Clinical Trial ID": "NCT1", "Intervention": ["INTERVENTION 1: ", "  A"], "Results": [
        "Outcome Measurement: ", "  Response", "  Time frame: 6 months", "Results 1: ", "  Arm/Group Title: A",
        "  Arm/Group Description: drug A", "  Overall Number of Participants Analyzed: 12",
        "  Measure Type: Count of Participants", "  Unit of Measure: Participants  Complete Response: 1   8.3%",
        "  Partial Response: 0   0.0%"]}
    assert nli4ct_results(trial) is None
    trial["Results"] = [*trial["Results"][:-2], "  Unit of Measure: Participants  5  41.7%"]
    candidate = nli4ct_results(trial)
    assert candidate is not None
    assert candidate.answer["results"] == [{"title": "A", "value": "5", "quote": "Unit of Measure: Participants  5  41.7%"}]
    assert candidate.answer["denomValue"] == ["12"] and candidate.answer["timeFrame"] == "6 months"


def test_corpus_helpers() -> None:
    text, offsets = detokenize(["Patients", "(", "n", "=", "20", ")", "with", "asthma", "."])
    assert text == "Patients (n = 20) with asthma."
    assert [text[a:b] for a, b in offsets][-2:] == ["asthma", "."]
    assert parse_count("Twenty") == 20 and parse_count("1,024") == 1024 and parse_count("twenty-one") == 21
    assert parse_count("many") is None and parse_count("one-twenty") is None
    assert clean_span("n = 39) or") is None and clean_span("operatively, n") is None
    assert clean_span("neonates undergoing cardiac surgery:") == "neonates undergoing cardiac surgery"


def test_cli_build_and_sources(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(instruct_group, ["build", "--out", str(tmp_path / "o"), "--shared", str(FIXTURE),
                                            "--tasks", "pico,results", "--seed", "2", "--json"])
    assert result.exit_code == 0, result.output
    sheet = json.loads(result.output)
    assert set(sheet["counts"]) == {"pico", "results"} and sheet["options"]["seed"] == 2
    listed = runner.invoke(instruct_group, ["sources", "--json"])
    assert "corpora/evidence-inference" in {s["name"] for s in json.loads(listed.output)}
    bad = runner.invoke(instruct_group, ["build", "--out", str(tmp_path / "x"), "--shared", str(FIXTURE),
                                         "--tasks", "nope"])
    assert bad.exit_code != 0 and "unknown task" in bad.output


@pytest.mark.shared
@pytest.mark.slow
def test_build_from_the_shared_data(shared_data: Path, tmp_path: Path) -> None:
    result = build(BuildOptions(out=tmp_path, shared=shared_data, max_per_source=60, seed=0))
    sheet = result.datasheet
    assert set(sheet["counts"]) == {"search_query", "eligibility", "characteristics", "arms", "participants",
                                    "results", "pico"}
    assert sheet["totals"]["shared_group_keys"] == 0
    assert not [s for s in sheet["sources"] if s["skipped"]]
    for source in sheet["sources"]:
        kept_share = source["examples"] / max(1, source["candidates"] - source["capped"])
        assert source["examples"] and kept_share > 0.5, source
