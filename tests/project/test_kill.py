"""SIGKILL during a large import leaves the project exactly as it was before the import."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leads.formats import read_bytes, write_records
from leads.project import Project

SAMPLE = Path(__file__).parents[1] / "fixtures" / "project" / "estrogens_150.jsonl"

IMPORTER = """
import sys, time
import leads.project._project as impl
from leads.project import Project

impl.INSERT_CHUNK = 500
project = Project.open(sys.argv[1])
marker = sys.argv[3]
pause = sys.argv[4] == "pause"

def progress(done, total):
    if done >= 2000:
        open(marker, "w").close()
        if pause:
            time.sleep(60)  # the test kills us here, mid-transaction

project.import_file(sys.argv[2], progress=progress)
open(marker + ".done", "w").close()
"""


def _big_file(tmp_path: Path, n: int) -> Path:
    base = read_bytes(SAMPLE.read_bytes(), source=SAMPLE.name)
    records = []
    for i in range(n):
        r = base[i % len(base)].model_copy(deep=True)
        r.pmid = str(90_000_000 + i)
        records.append(r)
    path = tmp_path / "big.jsonl"
    write_records(records, path, "jsonl")
    return path


def _state(location: Path) -> tuple[int, int, int]:
    with Project.open(location) as p:
        return p.count_records(), len(p.searches()), len(p.activity())


def _start(tmp_path: Path, project: Path, source: Path, mode: str) -> tuple[subprocess.Popen[bytes], Path]:
    script = tmp_path / "importer.py"
    script.write_text(IMPORTER)
    marker = tmp_path / f"marker-{mode}"
    proc = subprocess.Popen([sys.executable, str(script), str(project), str(source), str(marker), mode])
    return proc, marker


@pytest.mark.slow
def test_sigkill_mid_transaction_keeps_previous_state(tmp_path: Path) -> None:
    location = tmp_path / "review"
    with Project.init(location) as p:
        p.import_file(SAMPLE)
        p.decide(1, "include")
    before = _state(location)
    source = _big_file(tmp_path, 20_000)
    proc, marker = _start(tmp_path, location, source, "pause")
    deadline = time.time() + 120
    while not marker.exists():
        assert proc.poll() is None, "importer exited before reaching the kill point"
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _state(location) == before
    with Project.open(location) as p:
        assert set(p.current_decisions()) == {1}
        # the project is fully usable afterwards
        assert p.import_file(source).count == 20_000
        assert p.count_records() == 20_150


@pytest.mark.slow
def test_sigkill_at_arbitrary_moments_is_all_or_nothing(tmp_path: Path) -> None:
    location = tmp_path / "review"
    Project.init(location).close()
    source = _big_file(tmp_path, 20_000)
    for delay in (0.3, 0.8, 1.5):
        proc, _ = _start(tmp_path, location, source, "run")
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        records, searches, _ = _state(location)
        assert (records, searches) in {(0, 0), (20_000, 1)}, (delay, records, searches)
        if records:
            break
