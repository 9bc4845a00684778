"""The same project API on a real PostgreSQL server (a throwaway cluster on 127.0.0.1).

Skipped when the PostgreSQL server binaries or the psycopg driver are not installed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from leads.project import Project

SAMPLE = Path(__file__).parents[1] / "fixtures" / "project" / "estrogens_150.jsonl"
PG_BIN = next((p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None) \
    if Path("/usr/lib/postgresql").is_dir() else None

pytestmark = pytest.mark.postgres


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    pytest.importorskip("psycopg")
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL server binaries not installed")
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server")
    # not under pytest's tmp root: that is private to root and the server runs as postgres
    base = Path(tempfile.mkdtemp(prefix="leads-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        os.chown(base, pw.pw_uid, pw.pw_gid)
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "leads", "-A", "trust"]),
                   check=True, capture_output=True)
    port = _free_port()
    log = base / "log"
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o",
                                 f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True)
    try:
        url = f"postgresql+psycopg://leads@127.0.0.1:{port}/postgres"
        engine = sa.create_engine(url)
        for _ in range(50):
            try:
                with engine.connect():
                    break
            except sa.exc.OperationalError:
                time.sleep(0.1)
        engine.dispose()
        yield url
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_project_on_postgres(pg_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "team-review"
    with Project.init(directory, database_url=pg_url, actor="alice") as p:
        assert p.engine.dialect.name == "postgresql"
        ids = p.import_file(SAMPLE).record_ids
        p.import_file(SAMPLE, force=True)
        result = p.run_dedup()
        assert result.groups == 150
        p.decide(ids[0], "include", seconds_spent=3.0)
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), p.engine.begin() as conn:
            conn.execute(sa.text("UPDATE decisions SET label = 'exclude'"))
        st = p.status()
        assert st.prisma.duplicates_removed == 150 and st.decisions["title_abstract"] == {"include": 1}
    # the same database opened by URL alone
    with Project.open(pg_url) as again:
        assert again.count_records() == 300
