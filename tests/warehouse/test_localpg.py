"""The local cluster manager, on the real server binaries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from segmentation_dev import localpg

SEGMENTS = [sys.executable, "-m", "segmentation.cli.main"]


@pytest.fixture(autouse=True)
def _checkout_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkout's own cluster: not the session's project copy (tests/conftest.py), whose
    `.local/pg` would be another cluster on the same port."""
    monkeypatch.delenv("SEGMENTS_PROJECT_DIR", raising=False)


def _env_without_server() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def test_db_up_twice_prints_exports_and_connects() -> None:
    outputs = []
    for _ in range(2):
        res = subprocess.run(
            [*SEGMENTS, "db", "up"], capture_output=True, text=True, env=_env_without_server()
        )
        assert res.returncode == 0, res.stderr
        outputs.append(res.stdout)
    assert outputs[0] == outputs[1]
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in outputs[0].strip().splitlines()
    )
    assert set(exports) == {"PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"}
    assert exports["PGPORT"] != "5432"
    with psycopg.connect(
        host=exports["PGHOST"],
        port=exports["PGPORT"],
        user=exports["PGUSER"],
        password=exports["PGPASSWORD"].strip("'"),
        dbname=exports["PGDATABASE"],
    ) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


@pytest.mark.skipif(os.geteuid() != 0, reason="only meaningful when invoked as root")
def test_server_runs_as_unprivileged_user_when_root() -> None:
    localpg.ensure_server()
    cluster = localpg.LocalCluster()
    pid = int((cluster.data / "postmaster.pid").read_text().splitlines()[0])
    uid = os.stat(f"/proc/{pid}").st_uid
    assert uid != 0


def test_status_reports_running() -> None:
    localpg.ensure_server()
    res = subprocess.run(
        [*SEGMENTS, "db", "status"], capture_output=True, text=True, env=_env_without_server()
    )
    assert res.returncode == 0
    assert "running" in res.stdout


def test_missing_binaries_give_install_hint(tmp_path: Path) -> None:
    env = _env_without_server() | {
        "PATH": str(tmp_path),  # no pg_config, no initdb
        "SEGMENTS_PG_BINDIR": str(tmp_path),
        "SEGMENTS_PROJECT_DIR": str(tmp_path),
    }
    code = (
        "import glob, sys\n"
        "glob.glob = lambda pattern: []\n"  # hide Debian's /usr/lib/postgresql/*/bin
        "from segmentation.cli.main import main\n"
        "sys.exit(main(['db', 'up']))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 1
    assert "apt-get install postgresql" in res.stderr
    assert not (tmp_path / ".local" / "pg" / "data").exists()


def test_configured_server_is_used_as_is(pg_database: str) -> None:
    env = os.environ | {"PGHOST": "localhost", "PGPORT": os.environ["PGPORT"]}
    # localhost on the local port is still the local cluster; a different port is "configured"
    assert not _is_configured(env)
    assert _is_configured(os.environ | {"PGHOST": "db.internal", "PGPORT": "5432"})


def _is_configured(env: dict[str, str]) -> bool:
    code = "from segmentation_dev import localpg; print(localpg.server_configured())"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    return res.stdout.strip() == "True"
