"""A reader in another process never sees a partial publish.

The reader logs in as a Broadcast login granted acme (grant-reader) and loops over one
aggregate statement per iteration while 20 publishes of two alternating candidate versions
run. Every observation must equal one complete version's (count, sum of hashtext) for all
segments at once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from _publish import publish_state, set_catalogue, set_contacts, set_membership
from _serving import account_login

from segmentation.steps.publish import publish

READER = r"""
import json, os, sys, psycopg
out, stop = sys.argv[1], sys.argv[2]
query = (
    "select segment_key, count(*), sum(hashtext(contact_id)) "
    "from segments_serving.segment_members group by segment_key order by segment_key"
)
with psycopg.connect(autocommit=True) as conn, open(out, "w") as fh:
    while not os.path.exists(stop):
        rows = conn.execute(query).fetchall()
        fh.write(json.dumps([[s, n, int(h)] for s, n, h in rows]) + "\n")
        fh.flush()
"""

SEGMENTS = [("acme", f"s{i}") for i in range(4)] + [("globex", "s0")]


def _version(name: str) -> dict[tuple[str, str], list[str]]:
    """Two candidate versions that differ in every segment, in size and in members."""
    if name == "A":
        return {
            ("acme", "s0"): [f"c{i}" for i in range(0, 1500)],
            ("acme", "s1"): [f"c{i}" for i in range(0, 3000, 2)],
            ("acme", "s2"): [f"c{i}" for i in range(100, 400)],
            ("acme", "s3"): [],
            ("globex", "s0"): [f"g{i}" for i in range(500)],
        }
    return {
        ("acme", "s0"): [f"c{i}" for i in range(700, 2500)],
        ("acme", "s1"): [f"c{i}" for i in range(1, 3000, 2)],
        ("acme", "s2"): [],
        ("acme", "s3"): [f"c{i}" for i in range(0, 3000, 3)],
        ("globex", "s0"): [f"g{i}" for i in range(250, 900)],
    }


def _expected(conn: psycopg.Connection) -> list[list]:
    """What the reader's statement must return once the current candidate is published."""
    rows = conn.execute(
        "select segment_key, count(*), sum(hashtext(contact_id)) "
        "from segments_audit.segment_memberships where account_id = 'acme' "
        "group by segment_key order by segment_key"
    ).fetchall()
    return [[s, n, int(h)] for s, n, h in rows]


def _lines(path: Path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


def _wait_for_lines(path: Path, reader: subprocess.Popen, count: int) -> None:
    deadline = time.monotonic() + 60
    while _lines(path) < count:
        assert reader.poll() is None, "the reader process died"
        assert time.monotonic() < deadline, "the reader stopped producing observations"
        time.sleep(0.01)


def test_reader_sees_only_complete_versions(
    db: psycopg.Connection, pg_database: str, tmp_path: Path
) -> None:
    with publish_state(db) as conn, account_login(conn, pg_database, ["acme"]) as login:
        set_contacts(
            conn,
            [(f"c{i}", "acme", f"c{i}@example.com", None, False, True, False) for i in range(3000)],
        )
        set_catalogue(conn, SEGMENTS)
        expected: dict[str, list[list]] = {}
        for name in ("A", "B"):
            set_membership(conn, _version(name))
            expected[name] = _expected(conn)
        assert expected["A"] != expected["B"]
        publish(dt.date(2026, 1, 1), "initial", {})  # version B, so the first loop changes it

        out, stop = tmp_path / "observations.jsonl", tmp_path / "stop"
        env = {**login.env(), "PYTHONPATH": os.pathsep.join(sys.path)}
        reader = subprocess.Popen([sys.executable, "-c", READER, str(out), str(stop)], env=env)
        try:
            _wait_for_lines(out, reader, 1)
            for i in range(20):
                name = "A" if i % 2 == 0 else "B"
                set_membership(conn, _version(name))
                result = publish(dt.date(2026, 1, 2) + dt.timedelta(days=i), f"p{i}", {})
                want = {seg: 0 for acc, seg in SEGMENTS if acc == "acme"}
                want |= {seg: n for seg, n, _ in expected[name]}
                assert result.counts["acme"] == want
                # Let the reader start at least one statement after this commit, so every
                # version is observed without relying on timing.
                _wait_for_lines(out, reader, _lines(out) + 2)
        finally:
            stop.touch()
            reader.wait(timeout=30)
        assert reader.returncode == 0

    observations = [json.loads(line) for line in out.read_text().splitlines()]
    matched = {"A": 0, "B": 0}
    for obs in observations:
        versions = [name for name, exp in expected.items() if obs == exp]
        assert versions, f"observation matches no complete version: {obs}"
        matched[versions[0]] += 1
    assert matched["A"] >= 10 and matched["B"] >= 10, matched
