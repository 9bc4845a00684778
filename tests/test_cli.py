"""The command line: every command documented, and the import → dedup → status → export path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from leads.cli import iter_commands, main

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "fixtures" / "project" / "estrogens_150.jsonl"


def test_every_command_has_help_text() -> None:
    for name, command in iter_commands():
        assert (command.help or "").strip(), f"`{name}` has no help text"
        for param in command.params:
            if param.param_type_name == "option":
                assert getattr(param, "help", None), f"`{name}` option {param.opts} has no help"


def test_cli_reference_is_complete_and_current() -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import cli_docs
    finally:
        sys.path.pop(0)
    committed = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    for name, _ in iter_commands():
        assert f"## {name}\n" in committed, f"`{name}` is not documented in docs/cli.md"
    assert committed == cli_docs.render(), "docs/cli.md is stale: run python scripts/cli_docs.py"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_init_import_dedup_status_export(runner: CliRunner, tmp_path: Path) -> None:
    project = str(tmp_path / "review")
    assert runner.invoke(main, ["init", project]).exit_code == 0
    result = runner.invoke(main, ["import", str(SAMPLE), "-p", project])
    assert result.exit_code == 0, result.output
    assert "Imported 150 records" in result.output
    result = runner.invoke(main, ["import", str(SAMPLE), "-p", project])
    assert result.exit_code == 1 and "already imported" in result.output
    assert runner.invoke(main, ["import", str(SAMPLE), "-p", project, "--force"]).exit_code == 0
    result = runner.invoke(main, ["dedup", "run", "-p", project, "--json"])
    assert json.loads(result.output)["groups"] == 150
    result = runner.invoke(main, ["status", "-p", project, "--json"])
    status = json.loads(result.output)
    assert status["prisma"]["duplicates_removed"] == 150 and status["unique_records"] == 150
    result = runner.invoke(main, ["status", "-p", project])
    assert "Duplicate records removed" in result.output and "150" in result.output
    result = runner.invoke(main, ["dedup", "review", "-p", project, "--limit", "2"])
    assert "group 1" in result.output and "pmid" in result.output
    result = runner.invoke(main, ["dedup", "split", "151", "-p", project])
    assert result.exit_code == 0 and "separated from 1" in result.output
    result = runner.invoke(main, ["records", "list", "-p", project, "--contains", "estrogen", "--json", "--limit", "0"])
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert rows and all("estrogen" in (r["title"] + r.get("abstract", "")).lower() for r in rows)
    result = runner.invoke(main, ["records", "show", "3", "-p", project, "--json"])
    assert json.loads(result.output)["id"] == 3
    out = tmp_path / "unique.jsonl"
    result = runner.invoke(main, ["export", "-p", project, "--format", "jsonl", "-o", str(out)])
    assert result.exit_code == 0
    assert len(out.read_text().splitlines()) == 151  # 149 groups + the split pair


def test_errors_are_one_clear_line(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["status", "-p", str(tmp_path)])
    assert result.exit_code == 1
    assert "not a leads project" in result.output and "Traceback" not in result.output
    project = str(tmp_path / "r")
    runner.invoke(main, ["init", project])
    result = runner.invoke(main, ["import", str(tmp_path / "missing.ris"), "-p", project])
    assert result.exit_code == 1 and "missing.ris: file not found" in result.output
    result = runner.invoke(main, ["records", "show", "99", "-p", project])
    assert result.exit_code == 1 and "record 99 does not exist" in result.output


def test_installed_console_script_runs(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("leads")
    if not exe.exists():
        pytest.skip("console script not installed next to this interpreter")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("leads, version")


def test_the_command_line_starts_without_the_numerical_stack() -> None:
    # `leads --help` and every quick command must not pay seconds for SciPy, scikit-learn,
    # matplotlib or torch: heavy modules are imported inside the commands that use them.
    import subprocess
    import sys

    code = ("import sys, leads.cli; "
            "print(sorted(m for m in ('scipy', 'sklearn', 'matplotlib', 'torch', 'statsmodels') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
