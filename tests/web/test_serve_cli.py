"""``leads serve``: where the workspace lives, every option documented, and a real server start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx
import pytest

from leads.project import Project
from leads.web.cli import serve_command, workspace_for


def test_every_option_has_help() -> None:
    assert (serve_command.help or "").strip()
    for param in serve_command.params:
        if isinstance(param, click.Option):
            assert param.help, param.opts


def test_where_the_workspace_lives(tmp_path: Path) -> None:
    project = tmp_path / "review"
    Project.init(project, actor="alice").close()
    assert workspace_for((project,), None) == (project, [project], tmp_path)
    assert workspace_for((project,), tmp_path / "ws") == (tmp_path / "ws", [project], tmp_path / "ws" / "projects")
    fresh = tmp_path / "team"
    assert workspace_for((fresh,), None) == (fresh, [], fresh / "projects")
    (tmp_path / "plain").mkdir()
    with pytest.raises(click.BadParameter, match="not a leads project"):
        workspace_for((project, tmp_path / "plain"), None)
    with pytest.raises(click.BadParameter, match="does not exist"):
        workspace_for((project, tmp_path / "missing"), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_starts_on_loopback_and_prints_the_setup_code(tmp_path: Path) -> None:
    project = tmp_path / "review"
    Project.init(project, name="My review", actor="alice").close()
    port = _free_port()
    code = "from leads.web.cli import serve_command; serve_command()"
    process = subprocess.Popen([sys.executable, "-c", code, str(project), "--port", str(port), "--log-level",
                                "warning"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        first = process.stdout.readline() if process.stdout else ""
        second = process.stdout.readline() if process.stdout else ""
        assert f"http://127.0.0.1:{port}/" in first and "1 project(s)" in first
        assert "setup code" in second
        setup_code = second.rsplit(" ", 1)[-1].strip()
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/setup", timeout=5)
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        assert response.status_code == 200 and "Create the administrator" in response.text
        assert len(setup_code) >= 10
        assert (project / "workspace.db").is_file()
    finally:
        process.terminate()
        process.wait(timeout=30)
