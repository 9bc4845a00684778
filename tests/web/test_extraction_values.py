"""How extracted values read on the extraction page, and how an edit is parsed."""

from __future__ import annotations

import pytest

from leads.tasks.extraction import ResultsOutput
from leads.web.extraction import edit_text, parse_value, render_value
from leads.web.store import WorkspaceError


def test_binary_results_read_as_events_of_total() -> None:
    output = ResultsOutput.model_validate({
        "outcome": "All-cause mortality", "param_type": "NUMBER", "unit": "participants", "time_frame": "28 days",
        "unit_of_denominator": "Participants", "denominators": {"Remdesivir": 541.0, "Placebo": 521.0},
        "values": [{"group_id": "Remdesivir", "value": "59", "number": 59.0},
                   {"group_id": "Placebo", "value": "77", "number": 77.0}],
        "outcome_type": "binary",
        "arms": [{"group_id": "Remdesivir", "events": 59.0, "group_size": 541.0},
                 {"group_id": "Placebo", "events": 77.0}]})
    html = str(render_value("results", output.model_dump(mode="json")))
    assert html.split("<br>") == ["All-cause mortality (NUMBER, participants, 28 days)",
                                  "Remdesivir: 59/541 events", "Placebo: 77/521 events"]


def test_values_without_arm_numbers_and_other_kinds() -> None:
    reported = {"outcome": "Pain", "param_type": "MEDIAN", "unit": "", "time_frame": "", "denominators": {"A": 20},
                "values": [{"group_id": "A", "value": "3 <5>"}, {"group_id": "B", "value": None}], "arms": []}
    assert str(render_value("results", reported)).split("<br>") == [
        "Pain (MEDIAN)", "A: 3 &lt;5&gt; (N = 20)", "B: not reported"]
    assert "not reported" in str(render_value("characteristics", None))
    arms = [{"label": "M group", "type": "experimental", "description": "McGrath MAC"}, {"label": "N group"}]
    assert str(render_value("arms", arms)) == "M group (experimental): McGrath MAC<br>N group"
    participants = {"value": "52.1", "number": 52.1, "unit": "years", "group": "M group", "param_type": "MEAN"}
    assert str(render_value("participants", participants)) == "52.1 years (M group)"
    assert str(render_value("characteristics", 20.0)) == "20"


def test_an_edit_keeps_the_kind_of_the_value() -> None:
    assert parse_value(" cluster RCT ", "RCT", where="design") == "cluster RCT"
    assert parse_value("42", 40, where="n") == 42 and parse_value("41.5", 40, where="n") == 41.5
    assert parse_value("about 40", 40, where="n") == "about 40"
    assert parse_value('{"a": 1}', {"a": 2}, where="x") == {"a": 1}
    assert parse_value(edit_text([{"label": "A"}]), [], where="arms") == [{"label": "A"}]
    with pytest.raises(WorkspaceError, match=r"results: Pain.*JSON"):
        parse_value("26.8 s", {"outcome": "Pain"}, where="results: Pain")
    with pytest.raises(WorkspaceError, match="must stay a JSON list"):
        parse_value('{"a": 1}', [], where="arms")
    with pytest.raises(WorkspaceError, match="empty"):
        parse_value("   ", "x", where="design")
