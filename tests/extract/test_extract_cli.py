"""`leads extract TASK FILE --json`: the DESIGN.md contract, on real articles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from leads.cli import main
from leads.documents import read_document

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RESULTS = FIXTURES / "extract" / "results"
ARTICLE = FIXTURES / "documents" / "PMC5710015.txt"  # a full text as plain text


def run(*args: str) -> str:
    result = CliRunner().invoke(main, ["extract", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_results_binary_matches_the_gold_annotation() -> None:
    item = next(i for i in json.loads((RESULTS / "items.json").read_text()) if i["outcome_type"] == "binary")
    out = json.loads(run("results", str(RESULTS / f"PMC{item['pmcid']}.xml"), "--intervention", item["intervention"],
                         "--comparator", item["comparator"], "--outcome", item["outcome"],
                         "--outcome-type", "binary", "--json"))
    assert out["outcome_type"] == "binary"
    got = (out["intervention"]["events"], out["intervention"]["group_size"],
           out["comparator"]["events"], out["comparator"]["group_size"])
    assert got == (item["intervention_events"], item["intervention_group_size"],
                   item["comparator_events"], item["comparator_group_size"])
    assert out["evidence"] and out["engine"] == "classic"


def test_results_queries_answer_in_order(tmp_path: Path) -> None:
    items = json.loads((RESULTS / "items.json").read_text())
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps({"file": str(RESULTS / f"PMC{i['pmcid']}.xml"),
                                           "intervention": i["intervention"], "comparator": i["comparator"],
                                           "outcome": i["outcome"], "outcome_type": i["outcome_type"]}) + "\n"
                               for i in items))
    lines = [json.loads(line) for line in run("results", "--queries", str(queries), "--json").splitlines()]
    assert [line["file"] for line in lines] == [str(RESULTS / f"PMC{i['pmcid']}.xml") for i in items]
    continuous = next(line for line, i in zip(lines, items, strict=True) if i["outcome_type"] == "continuous")
    gold = next(i for i in items if i["outcome_type"] == "continuous")
    assert continuous["intervention"]["mean"] == pytest.approx(gold["intervention_mean"])
    assert continuous["comparator"]["mean"] == pytest.approx(gold["comparator_mean"])


def test_bad_queries_file_names_the_line(tmp_path: Path) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"file": "a.xml", "intervention": "x"}\n')
    result = CliRunner().invoke(main, ["extract", "results", "--queries", str(queries), "--json"])
    assert result.exit_code == 1 and "line 1: missing comparator, outcome" in result.output


def test_pico_spans_point_into_the_file() -> None:
    text = read_document(ARTICLE).text
    assert text == ARTICLE.read_text(encoding="utf-8")  # plain text: offsets are the file's own
    spans = json.loads(run("pico", str(ARTICLE), "--json"))["spans"]
    assert spans and {s["label"] for s in spans} <= {"participants", "interventions", "outcomes"}
    for span in spans:
        assert text[span["start"]:span["end"]] == span["text"]


def test_characteristics_participants_and_arms_carry_located_evidence(tmp_path: Path) -> None:
    text = read_document(ARTICLE).text
    fields = json.loads(run("characteristics", str(ARTICLE), "--field", "registration: trial registration id",
                            "--field", "design: study design", "--json"))["fields"]
    by_name = {f["name"]: f for f in fields}
    assert by_name["registration"]["value"] == "UMIN000023506"
    for field in fields:
        for ev in field["evidence"]:
            assert text[ev["start"]:ev["end"]] == ev["quote"]
    participants = json.loads(run("participants", str(ARTICLE), "--json"))
    assert set(participants) >= {"total", "groups"}
    assert participants["total"] is None or isinstance(participants["total"], int)
    arms = json.loads(run("arms", str(ARTICLE), "--json"))["arms"]
    assert all(set(a) >= {"label", "type", "description", "interventions"} for a in arms)
    # several files: JSON Lines with a "file" key
    copy = tmp_path / "copy.txt"
    copy.write_text(text, encoding="utf-8")
    lines = run("pico", str(ARTICLE), str(copy), "--json").splitlines()
    assert [json.loads(line)["file"] for line in lines] == [str(ARTICLE), str(copy)]
