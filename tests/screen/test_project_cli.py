"""``leads criteria``, ``leads screen``, ``leads next``, ``leads decide`` on the bundled Estrogens
example, through a CLI group built as ``leads`` builds its own (LeadsGroup + these commands)."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from leads.cli import LeadsGroup
from leads.cli import main as leads_main
from leads.screen.project_cli import criteria_group, decide_command, next_command, screen_command

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "estrogens"
COMMANDS = (criteria_group, screen_command, next_command, decide_command)


@click.group(cls=LeadsGroup)
def cli() -> None:
    """leads with the screening commands."""


for _name in ("init", "import", "dedup", "status"):
    cli.add_command(leads_main.commands[_name], _name)
for _command in COMMANDS:
    cli.add_command(_command)


def run(*args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(cli, list(args), env={"LEADS_USER": "alice"})
    if ok:
        assert result.exit_code == 0, result.output
    return result


def rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def project(tmp_path: Path) -> str:
    path = str(tmp_path / "estrogens")
    run("init", path)
    run("import", str(EXAMPLE / "asreview_estrogens.csv"), "-p", path)
    return path


def test_every_command_and_option_has_help() -> None:
    def walk(command: click.Command, name: str) -> None:
        assert (command.help or "").strip(), f"{name} has no help"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} option {param.opts} has no help"
        if isinstance(command, click.Group):
            for sub_name, sub in command.commands.items():
                walk(sub, f"{name} {sub_name}")

    for command in COMMANDS:
        walk(command, command.name or "?")


def test_screen_next_decide_end_to_end(project: str) -> None:
    db = Path(project) / "project.db"
    run("criteria", "set", "-p", project, "--file", str(EXAMPLE / "review.toml"), "--note", "from review.toml")
    shown = json.loads(run("criteria", "show", "-p", project, "--json").output)
    assert shown["version"] == 1 and [c["label"] for c in shown["criteria"]] == ["I1", "I2", "I3", "E1"]

    first = json.loads(run("screen", "-p", project, "--limit", "4", "--json").output)
    assert first["assessed"] == 4 and first["engine"] == "classic" and first["model_calls"] == 4
    # 14 of the CSV's records have neither title nor abstract: nothing to assess
    assert len(first["no_text"]) == 14 and first["remaining"] == 367 - 14 - 4 and first["criteria_version"] == 1
    second = json.loads(run("screen", "-p", project, "--limit", "4", "--json").output)
    assert second["assessed"] == 4 and second["already_assessed"] == 4 and second["remaining"] == 345
    stored = rows(db, "SELECT a.record_id, a.engine, m.model, a.call_id, s.version FROM ai_assessments a "
                      "JOIN model_calls m ON m.id = a.call_id JOIN criteria_sets s ON s.id = a.criteria_set_id")
    assert len(stored) == len({r[0] for r in stored}) == 8
    assert {(r[1], r[2], r[4]) for r in stored} == {("classic", "classic/eligibility/1.0", 1)}

    nxt = json.loads(run("next", "-p", project, "--json").output)
    rid = nxt["record_id"]
    assert nxt["ranking"] == "zero-shot" and nxt["remaining"] == 367 and nxt["assessed"] == 8
    assert rid in {r[0] for r in stored}
    assessment = nxt["assessment"]
    assert [v["label"] for v in assessment["verdicts"]] == ["I1", "I2", "I3", "E1"]
    assert assessment["call_id"] and assessment["model"] == "classic/eligibility/1.0"
    assert {"recall_lower_bound", "remaining_upper_bound", "stop"} <= set(nxt["stopping"])
    text = run("next", "-p", project).output
    assert f"Record {rid}" in text and "AI assessment by classic" in text and "Stopping estimate" in text
    assert re.search(r"I3 (YES|PARTIAL|NO|UNCERTAIN) +The study is published in English", text)

    decided = json.loads(run("decide", str(rid), "exclude", "-p", project, "--reason", "E1",
                             "--note", "high-risk population", "--reviewer", "bob", "--json").output)
    assert decided["actor"] == "bob" and decided["actor_kind"] == "human" and decided["criteria_version"] == 1
    assert decided["reasons"][0].startswith("E1: The population was selected") and decided["ai_assisted"]
    bad = run("decide", str(rid), "exclude", "-p", project, "--reason", "X9", ok=False)
    assert bad.exit_code == 1 and "no criterion 'X9'" in bad.output and "Traceback" not in bad.output
    missing = run("decide", "99999", "include", "-p", project, ok=False)
    assert missing.exit_code == 1 and "record 99999 does not exist" in missing.output

    after = json.loads(run("next", "-p", project, "--json").output)
    assert after["record_id"] != rid and after["screened"] == 1 and after["remaining"] == 366
    history = rows(db, "SELECT record_id, label, actor, actor_kind, criteria_set_id, note FROM decisions")
    assert history == [(rid, "exclude", "bob", "human", 1, "high-risk population")]
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        rows(db, "UPDATE decisions SET label = 'include'")
    text = run("decide", str(rid), "undo", "-p", project).output
    assert f"Recorded undo for record {rid} by alice" in text
    assert json.loads(run("next", "-p", project, "--json").output)["screened"] == 0


def test_auto_decide_records_ai_decisions_as_ai(project: str) -> None:
    db = Path(project) / "project.db"
    run("criteria", "set", "-p", project, "--file", str(EXAMPLE / "review.toml"))
    out = json.loads(run("screen", "-p", project, "--limit", "6", "--auto-decide", "--json").output)
    ai = rows(db, "SELECT actor, actor_kind, call_id, criteria_set_id FROM decisions")
    assert out["ai_decisions"] == len(ai) > 0
    assert all(a[0] == "ai:classic" and a[1] == "ai" and a[2] and a[3] == 1 for a in ai)
    status = json.loads(run("status", "-p", project, "--json").output)
    assert status["ai_decisions"] == len(ai)
    # the people's queue still holds every record
    assert json.loads(run("next", "-p", project, "--json").output)["remaining"] == 367


def test_criteria_commands(project: str) -> None:
    assert "No eligibility criteria yet" in run("criteria", "show", "-p", project).output
    usage = run("criteria", "set", "-p", project, ok=False)
    assert usage.exit_code == 2 and "give --file and/or --include/--exclude" in usage.output
    no_question = run("criteria", "generate", "-p", project, ok=False)
    assert no_question.exit_code == 1 and "no review question" in no_question.output

    out = run("criteria", "generate", "-p", project, "--population", "Postmenopausal women",
              "--intervention", "Estrogen therapy", "--outcome", "Hip fracture").output
    assert "Stored review question version 1" in out and "Stored criteria version 1" in out
    assert "population" in out and "Participants are postmenopausal women" in out
    draft = json.loads(run("criteria", "generate", "-p", project, "--dry-run", "--json").output)
    assert draft["version"] is None and [c["label"] for c in draft["criteria"]] == ["I1", "I2", "I3", "I4"]
    assert draft["engine"] == "classic" and draft["call_id"]

    run("criteria", "add", "-p", project, "--exclude", "Case reports", "--note", "case reports")
    run("criteria", "remove", "I4", "-p", project)
    run("criteria", "set", "-p", project, "--include", "Postmenopausal women", "--exclude", "Men")
    versions = json.loads(run("criteria", "versions", "-p", project, "--json").output)
    assert [(v["version"], v["count"]) for v in versions] == [(1, 4), (2, 5), (3, 4), (4, 2)]
    assert versions[1]["note"] == "case reports"
    v2 = json.loads(run("criteria", "show", "-p", project, "--version", "2", "--json").output)
    assert [(c["label"], c["pico_element"]) for c in v2["criteria"]][-2:] == [("I4", "study_design"), ("E1", None)]
    table = run("criteria", "versions", "-p", project).output
    assert "case reports" in table
    gone = run("criteria", "show", "-p", project, "--version", "9", ok=False)
    assert gone.exit_code == 1 and "criteria version 9 does not exist" in gone.output


def test_screen_without_criteria_is_one_clear_line(project: str) -> None:
    result = run("screen", "-p", project, ok=False)
    assert result.exit_code == 1 and "no eligibility criteria" in result.output
    assert "Traceback" not in result.output
    bad = run("screen", "-p", project, "--engine-option", "nonsense", ok=False)
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output


@pytest.mark.slow
def test_screen_killed_mid_run_continues(project: str) -> None:
    """SIGKILL a `leads screen` process mid-run: the rerun stores what the killed run had logged
    and continues with the rest, never calling the engine twice for a record."""
    db = Path(project) / "project.db"
    run("criteria", "set", "-p", project, "--file", str(EXAMPLE / "review.toml"))
    code = ("import sys; from leads.screen.project_cli import screen_command; "
            "screen_command(sys.argv[1:], standalone_mode=True)")
    args = [sys.executable, "-c", code, "-p", project, "--limit", "40", "--json"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "LEADS_USER": "alice"})
    deadline = time.monotonic() + 120
    logged = 0
    while time.monotonic() < deadline and proc.poll() is None:
        logged = rows(db, "SELECT count(*) FROM model_calls WHERE task = 'eligibility'")[0][0]
        if logged >= 3:
            break
        time.sleep(0.1)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read() if proc.stderr else ''}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    calls = rows(db, "SELECT item_key FROM model_calls WHERE task = 'eligibility'")
    stored = rows(db, "SELECT count(*) FROM ai_assessments")[0][0]
    assert len(calls) >= 3 and stored <= len(calls)

    rerun = json.loads(run("screen", "-p", project, "--limit", "5", "--json").output)
    assert rerun["recovered"] == len(calls) - stored and rerun["assessed"] == 5
    keys = [r[0] for r in rows(db, "SELECT item_key FROM model_calls WHERE task = 'eligibility'")]
    assert len(keys) == len(set(keys)) == len(calls) + 5
    assessed = rows(db, "SELECT record_id FROM ai_assessments")
    assert len(assessed) == len({r[0] for r in assessed}) == len(calls) + 5


def test_interactive_session_decides_skips_and_records_time(project: str) -> None:
    db = Path(project) / "project.db"
    run("criteria", "set", "-p", project, "--file", str(EXAMPLE / "review.toml"))
    top = json.loads(run("next", "-p", project, "--json").output)["record_id"]
    answers = "\n".join(["what", "e E9", "e e1, I2: prior events", "s", "m", "q"]) + "\n"
    result = CliRunner().invoke(cli, ["next", "-p", project, "-i", "--reviewer", "erin"], input=answers)
    assert result.exit_code == 0, result.output
    assert "Not understood" in result.output and "no criterion 'E9'" in result.output
    assert "2 decisions recorded in this session." in result.output
    shown = [int(n) for n in re.findall(r"^Record (\d+) ", result.output, re.MULTILINE)]
    # decided, skipped, decided, and the fourth shown when the session was quit
    assert len(shown) == 4 and shown[0] == top and len(set(shown)) == 4
    decisions = rows(db, "SELECT record_id, label, reasons, note, actor, actor_kind, seconds_spent "
                         "FROM decisions ORDER BY id")
    assert [(d[0], d[1]) for d in decisions] == [(shown[0], "exclude"), (shown[2], "maybe")]
    first = decisions[0]
    assert first[3] == "prior events" and first[4] == "erin" and first[5] == "human"
    assert [r[:3] for r in json.loads(first[2])] == ["E1:", "I2:"]
    assert first[6] is not None and first[6] >= 0
    # the skipped record and the last one shown are still to screen
    assert not {shown[1], shown[3]} & {d[0] for d in decisions}
    assert run("next", "-p", project, "-i", "--json", ok=False).exit_code == 2
