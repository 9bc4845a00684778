"""``leads synthesize`` (the click command; wired into ``leads`` by src/leads/cli.py)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from leads.synthesis.cli import synthesize_command


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_every_option_has_help() -> None:
    assert (synthesize_command.help or "").strip()
    for param in synthesize_command.params:
        if param.param_type_name == "option":
            assert getattr(param, "help", None), f"option {param.opts} has no help"


def test_json_output_reproduces_metafor(runner: CliRunner, synthesis_fixtures: Path) -> None:
    result = runner.invoke(synthesize_command, [str(synthesis_fixtures / "bcg.csv"), "--measure", "rr",
                                                "--model", "random", "--tau2", "REML", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["measure"] == "RR" and data["model"] == "random" and data["tau2_method"] == "REML"
    assert data["random"]["estimate"] == pytest.approx(-0.7145, abs=5.1e-5)
    assert data["heterogeneity"]["tau2"] == pytest.approx(0.3132, abs=5.1e-5)
    assert len(data["studies"]) == 13 and data["studies"][0]["study_id"] == "Aronson 1948"
    assert data["studies"][0]["inputs"]["treatment.events"] == 4


def test_mantel_haenszel_table_output_and_plot(runner: CliRunner, synthesis_fixtures: Path,
                                               tmp_path: Path) -> None:
    plot = tmp_path / "forest.svg"
    result = runner.invoke(synthesize_command, [str(synthesis_fixtures / "bcg.csv"), "--measure", "OR",
                                                "--model", "fixed", "--method", "MH", "--plot", str(plot),
                                                "--show", "both", "--title", "BCG",
                                                "--link-template", "/study/{study_id}"])
    assert result.exit_code == 0, result.output
    assert "fixed (MH)" in result.output and "0.623" in result.output  # metan: OR 0.6229
    assert "Heterogeneity: Q = 163.943" in result.output
    assert f"Forest plot written to {plot}" in result.output
    root = ET.fromstring(plot.read_bytes())
    rows = root.findall(".//{http://www.w3.org/2000/svg}g[@class='leads-study']")
    assert len(rows) == 13


def test_exclusions_and_outcome_filter(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("study,outcome,events_t,total_t,events_c,total_c\n"
                    "A,death,3,40,5,41\nB,death,0,30,0,31\nC,stroke,1,40,2,41\nD,death,6,50,9,52\n",
                    encoding="utf-8")
    result = runner.invoke(synthesize_command, [str(path), "--measure", "RR", "--outcome", "death"])
    assert result.exit_code == 0, result.output
    assert "Excluded B: no events in either arm" in result.output
    assert "C" not in [line.split()[0] for line in result.output.splitlines() if line.strip()]


def test_errors_exit_with_a_message(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("study,events_t,total_t,events_c,total_c\nA,50,40,5,41\n", encoding="utf-8")
    result = runner.invoke(synthesize_command, [str(path), "--measure", "RR"])
    assert result.exit_code == 1
    assert "study 'A', field 'treatment.events'" in result.output
    result = runner.invoke(synthesize_command, [str(path), "--measure", "MD"])
    assert result.exit_code == 1 and "cannot give a MD" in result.output
    result = runner.invoke(synthesize_command, [str(path)])
    assert result.exit_code == 2 and "--measure" in result.output
