"""docs/authoring.md's tutorial, run as written: the real `segments` console script on real
PostgreSQL with the demo data, in a copy of the project. Each step checks what the command
prints or writes, and that the command is in the doc verbatim, and the segment's YAML is the
doc's own block, so the tutorial cannot rot. The tests build on each other, in order.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import psycopg
import pytest
from _segments import checkout_copy

PROJECT = Path(__file__).resolve().parents[2]
DOC = PROJECT / "docs" / "authoring.md"
SEGMENTS = Path(sys.executable).parent / "segments"
AS_OF = "2026-11-20"
TARGET = "globex/vip_whatsapp"
FILE = "segment_defs/globex/vip_whatsapp.yml"
CONTACT = "globex-c000001"

pytestmark = pytest.mark.slow
state: dict[str, Any] = {}


@pytest.fixture(scope="module")
def project(pg_database: str, gx_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project (no generated files, no state), as a new user's checkout."""
    root = tmp_path_factory.mktemp("tutorial") / "project"
    return checkout_copy(root, ("macros", "models", "segment_defs"))


def segments(project: Path, *args: str, documented: bool = True) -> subprocess.CompletedProcess:
    """Run `segments <args>` as the doc writes it (and check that it does)."""
    if documented:
        line = " ".join(["segments", *args])
        assert line in DOC.read_text(), f"not in docs/authoring.md: {line}"
    env = {**os.environ, "SEGMENTS_PROJECT_DIR": str(project), "COLUMNS": "200"}
    return subprocess.run(
        [str(SEGMENTS), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )


def doc_block(first_line: str) -> str:
    """The ```yaml block of the doc that starts with `first_line`."""
    for match in re.finditer(r"^```yaml\n(.*?)^```", DOC.read_text(), re.M | re.S):
        if match[1].startswith(first_line):
            return match[1]
    raise AssertionError(f"no yaml block starting {first_line!r} in {DOC}")


def test_before_you_start(project: Path, db: psycopg.Connection) -> None:
    res = segments(project, "db", "init")
    assert res.returncode == 0, res.stderr
    res = segments(
        project, "demo-data", "--accounts", "2", "--contacts", "2000", "--anchor-date", AS_OF
    )
    assert res.returncode == 0, res.stderr
    assert re.search(r"contacts:\s+[\d,]+ rows", res.stdout)
    accounts = dict(db.execute("select account_id, package from crm_raw.accounts").fetchall())
    assert accounts == {"acme": "plus", "globex": "ultimate"}
    res = segments(project, "run", "--as-of", "2026-11-19")
    assert res.returncode in (0, 1), res.stderr[-3000:]  # 1: a quarantine, as the doc says
    published = db.execute(
        "select count(*) from segments_serving.segments where as_of = '2026-11-19'"
    ).fetchone()[0]
    assert published > 0


def test_1_init(project: Path) -> None:
    res = segments(project, "init", TARGET)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == FILE
    text = (project / FILE).read_text()
    assert text.startswith("# yaml-language-server: $schema=../segment.schema.json\n")
    again = segments(project, "init", TARGET, documented=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    assert (project / FILE).read_text() == text


def test_2_validate(project: Path) -> None:
    res = segments(project, "validate", FILE)
    assert res.returncode == 0, res.stderr  # the scaffold validates as it is
    (project / FILE).write_text(doc_block(f"# {FILE}"))
    res = segments(project, "validate", FILE)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 segment definitions OK" in res.stderr
    assert "checked offline" not in res.stderr  # the database was there
    res = segments(project, "validate", "--format", "json", FILE)
    report = json.loads(res.stdout)
    assert res.returncode == 0
    assert report == {**report, "ok": True, "segments": 1, "errors": [], "offline": None}


def test_3_preview(project: Path) -> None:
    res = segments(project, "preview", TARGET, "--as-of", AS_OF)
    assert res.returncode == 0, res.stderr
    assert "globex-c" in res.stdout  # a sample of members
    for field in ("lifecycle_stage", "consent_whatsapp", "orders"):  # the funnel's steps
        assert field in res.stdout
    state["preview"] = res.stdout


def test_4_why(project: Path) -> None:
    res = segments(project, "why", TARGET, CONTACT, "--as-of", AS_OF)
    assert res.returncode == 0, res.stderr
    assert CONTACT in res.stdout
    for field in ("lifecycle_stage", "consent_whatsapp", "orders"):
        assert field in res.stdout


def test_5_diff(project: Path) -> None:
    res = segments(project, "diff", FILE)
    assert res.returncode == 0, res.stderr
    assert "vip_whatsapp" in res.stdout


def test_6_run(project: Path, db: psycopg.Connection) -> None:
    res = segments(project, "run", "--as-of", AS_OF)
    quarantined = {
        tuple(r)
        for r in db.execute(
            "select account_id, segment_key from segments_history.segment_sizes "
            "where as_of = %s and stale",
            (AS_OF,),
        )
    }
    # The demo data quarantines acme/loyal_customers (min_members: 1, nobody qualifies): the
    # run publishes the rest and exits 1, as the doc says.
    assert res.returncode == (1 if quarantined else 0), res.stderr[-3000:]
    assert ("globex", "vip_whatsapp") not in quarantined
    for step in ("check_sources", "build", "audit", "publish", "history"):
        assert re.search(rf"^{step}\s+done in", res.stderr, re.M), res.stderr[-3000:]
    sizes = {
        (a, s): (n, e, x)
        for a, s, n, e, x in db.execute(
            "select account_id, segment_key, member_count, entered, exited "
            "from segments_history.segment_sizes where as_of = %s",
            (AS_OF,),
        )
    }
    members, entered, exited = sizes[("globex", "vip_whatsapp")]
    assert members > 0 and entered == members and exited == 0
    # The summary table: one row per account and segment, with history's numbers.
    rows = {}
    for line in res.stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if len(cells) == 6 and (cells[0], cells[1]) in sizes:
            rows[(cells[0], cells[1])] = cells
    assert set(rows) == set(sizes)
    for key, cells in rows.items():
        n, e, x = sizes[key]
        assert (cells[2], cells[4], cells[5]) == (f"{n:,}", f"{e:,}", f"{x:,}")
        assert cells[3].startswith("yes" if key in quarantined else "no")
    state["members"] = members
    if "preview" in state:
        assert f"{members:,}" in state["preview"] or str(members) in state["preview"]


def test_7_ls(project: Path, db: psycopg.Connection) -> None:
    res = segments(project, "ls", "--account", "globex", "--tag", "tutorial")
    assert res.returncode == 0, res.stderr
    [line] = [ln for ln in res.stdout.splitlines() if "vip_whatsapp" in ln]
    assert "globex" in line and "growth-team" in line and f"{state['members']:,}" in line
    assert AS_OF in line
    res = segments(project, "ls", "--account", "globex", "--format", "json", documented=False)
    listed = json.loads(res.stdout)["segments"]
    # Each segment's recorded sizes, oldest first: the first run (11-19) and the tutorial's.
    history: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for a, seg, n, d in db.execute(
        "select account_id, segment_key, member_count, as_of from "
        "segments_history.segment_sizes where account_id = 'globex' order by as_of"
    ):
        history.setdefault((a, seg), []).append((n, d.isoformat()))
    assert {(r["account"], r["segment"]) for r in listed} == set(history)
    for r in listed:
        assert [(t["members"], t["as_of"]) for t in r["trend"]] == history[
            (r["account"], r["segment"])
        ]
        assert r["members"] == history[(r["account"], r["segment"])][-1][0]
        assert len(r["sparkline"]) == 7
    typo = segments(project, "ls", "--account", "globx", documented=False)
    assert typo.returncode == 1 and "(did you mean 'globex'?)" in typo.stderr


def test_8_export(project: Path, db: psycopg.Connection) -> None:
    res = segments(project, "export", TARGET, "--format", "csv", "--out", "vip_whatsapp.csv")
    assert res.returncode == 0, res.stderr
    with (project / "vip_whatsapp.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    members = {
        r[0]
        for r in db.execute(
            "select contact_id from segments_serving.segment_members "
            "where account_id = 'globex' and segment_key = 'vip_whatsapp'"
        )
    }
    assert {r["contact_id"] for r in rows} == members and len(rows) == len(members)
    res = segments(project, "export", TARGET, "--format", "xlsx", "--out", "vip_whatsapp.xlsx")
    assert res.returncode == 0, res.stderr
    with zipfile.ZipFile(project / "vip_whatsapp.xlsx") as book:
        assert "xl/workbook.xml" in book.namelist()
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
    assert sheet.count("<row") == len(members) + 1  # the header and one row a member
