"""`segments diff` and `segments export` on a real pipeline run over small demo data.

The module reads a copy of the shared demo warehouse (tests/_demo.py: the pipeline run once),
with a project copy of the shipped definitions, then: exports (csv, xlsx, parquet, one
channel) equal the serving rows; a changed, a new and a removed definition are diffed and
their entered/exited contacts equal an independent SQL computation, while serving stays
byte-for-byte unchanged; a stale segment is refused unless --allow-stale.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from _activity import project_copy
from _demo import D1, DemoWarehouse
from _publish import fingerprint
from _segments import PROJECT_DIR
from openpyxl import load_workbook

from segmentation.cli import main as cli
from segmentation.errors import ExportError
from segmentation.steps import export as export_step
from segmentation.steps import pipeline
from segmentation.steps import publish as publish_step

pytestmark = pytest.mark.slow

AS_OF = D1
# whatsapp_reachable (a template: both accounts) becomes a rule the test can write in SQL.
CHANGED_WHERE = """\
where:
  all:
    - {field: consent_whatsapp, op: is_true}
    - {field: loyalty_points, op: gte, value: 2000}
"""
NEW_SEGMENT = """\
key: diff_new
name: Diff new
account: acme
owner: tests
visibility: team
where:
  all:
    - {field: loyalty_points, op: gte, value: 3000}
"""
# The candidates of the two rules above, written independently of the compiler.
CANDIDATE_SQL = {
    "whatsapp_reachable": "c.consent_whatsapp and c.loyalty_points >= 2000",
    "diff_new": "c.loyalty_points >= 3000",
}


@pytest.fixture(scope="module")
def pg_template(demo_day1: DemoWarehouse) -> str:
    """A copy of the shared demo warehouse (tests/_demo.py): the shipped definitions run
    once for AS_OF (a quarantined segment published the rest)."""
    assert demo_day1.dates == (AS_OF,)
    return demo_day1.database


@pytest.fixture(scope="module")
def project(
    pg_database: str, gx_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A project copy with the shipped definitions, which the tests change."""
    with project_copy(tmp_path_factory.mktemp("diff") / "project") as target:
        shutil.rmtree(target / "segment_defs")
        shutil.copytree(PROJECT_DIR / "segment_defs", target / "segment_defs")
        yield target


def serving_members(db: psycopg.Connection, account: str, key: str) -> list[tuple]:
    """The members with their per-channel addresses, straight from the serving tables."""
    return db.execute(
        "select m.contact_id, c.full_name, m.member_since, "
        "max(r.address) filter (where r.channel = 'whatsapp'), "
        "max(r.address) filter (where r.channel = 'email'), "
        "max(r.address) filter (where r.channel = 'sms') "
        "from segments_serving.segment_members m "
        "left join segments_serving.broadcast_recipients r "
        "using (account_id, segment_key, contact_id) "
        "left join segments_staging.stg_crm__contacts c using (account_id, contact_id) "
        "where m.account_id = %s and m.segment_key = %s "
        "group by m.contact_id, c.full_name, m.member_since order by m.contact_id",
        (account, key),
    ).fetchall()


def biggest_segment(db: psycopg.Connection) -> tuple[str, str]:
    return db.execute(
        "select account_id, segment_key from segments_serving.segments where not stale "
        "order by member_count desc, account_id, segment_key limit 1"
    ).fetchone()


def as_text(rows: list[tuple]) -> list[tuple]:
    return [tuple("" if v is None else str(v) for v in row) for row in rows]


def test_csv_xlsx_and_parquet_equal_the_serving_rows(
    project: Path, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    account, key = biggest_segment(db)
    want = serving_members(db, account, key)
    assert len(want) > 20 and any(r[3] for r in want) and any(r[4] for r in want)
    header = ("contact_id", "full_name", "member_since", "whatsapp", "email", "sms")

    # csv on stdout (the real command), in chunks smaller than the segment
    capsys.readouterr()
    assert cli.main(["export", f"{account}/{key}"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert tuple(rows[0]) == header
    assert [tuple(r) for r in rows[1:]] == as_text(want)

    xlsx = tmp_path / "out.xlsx"
    result = export_step.export(f"{account}/{key}", "xlsx", xlsx, chunk_size=7)
    assert result.rows == len(want)
    sheet = load_workbook(xlsx, read_only=True).active
    got = list(sheet.iter_rows(values_only=True))
    assert got[0] == header
    # openpyxl reads a date cell back as a datetime at midnight, and drops trailing empty cells
    padded = [(*r, *[None] * (len(header) - len(r))) for r in got[1:]]
    assert [(*r[:2], r[2].date(), *r[3:]) for r in padded] == want

    parquet = tmp_path / "out.parquet"
    assert (
        cli.main(["export", f"{account}/{key}", "--format", "parquet", "--out", str(parquet)]) == 0
    )
    table = pq.read_table(parquet)
    assert tuple(table.column_names) == header
    assert [tuple(r.values()) for r in table.to_pylist()] == want
    assert pq.ParquetFile(parquet).metadata.num_row_groups == 1

    chunked = tmp_path / "chunked.parquet"
    export_step.export(f"{account}/{key}", "parquet", chunked, chunk_size=10)
    assert pq.ParquetFile(chunked).metadata.num_row_groups == -(-len(want) // 10)
    assert pq.read_table(chunked).to_pylist() == table.to_pylist()


def test_a_channel_export_equals_the_recipients(
    project: Path, db: psycopg.Connection, tmp_path: Path
) -> None:
    account, key = biggest_segment(db)
    for channel in ("whatsapp", "email", "sms"):
        want = db.execute(
            "select r.contact_id, c.full_name, r.channel, r.address "
            "from segments_serving.broadcast_recipients r "
            "left join segments_staging.stg_crm__contacts c using (account_id, contact_id) "
            "where r.account_id = %s and r.segment_key = %s and r.channel = %s "
            "order by r.contact_id",
            (account, key, channel),
        ).fetchall()
        assert want, channel
        path = tmp_path / f"{channel}.csv"
        code = cli.main(["export", f"{account}/{key}", "--channel", channel, "--out", str(path)])
        assert code == 0
        rows = list(csv.reader(path.open(newline="")))
        assert rows[0] == ["contact_id", "full_name", "channel", "address"]
        assert [tuple(r) for r in rows[1:]] == as_text(want)


def test_export_names_unknown_and_unpublished_segments(
    project: Path, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    account, key = biggest_segment(db)
    capsys.readouterr()
    assert cli.main(["export", f"{account}/{key[:-1]}", "--out", str(tmp_path / "x.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"error: unknown segment '{key[:-1]}' for account '{account}' (did you mean '{key}'?)"
    )
    assert not (tmp_path / "x.csv").exists()
    assert cli.main(["export", f"{account}x/{key}", "--out", str(tmp_path / "x.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: unknown account '{account}x': nothing is published for it "
        f"(did you mean '{account}'?)"
    )

    defined = project / "segment_defs" / "acme" / "diff_new.yml"
    defined.write_text(NEW_SEGMENT)
    try:
        with pytest.raises(ExportError, match="acme/diff_new has never been published"):
            export_step.export("acme/diff_new", "csv", tmp_path / "y.csv")
    finally:
        defined.unlink()
    assert not (tmp_path / "y.csv").exists()


def _expected_changes(db: psycopg.Connection, account: str, key: str, rule: str | None) -> dict:
    """entered / exited / candidate size of `rule` against serving, in plain SQL."""
    candidate = (
        "select c.contact_id from segments_staging.stg_crm__contacts c "
        "join segments_staging.stg_crm__accounts a using (account_id) "
        "where c.account_id = %(account)s and (c.created_at is null or "
        "(c.created_at at time zone a.timezone)::date <= %(as_of)s) and " + rule
        if rule
        else "select null::text as contact_id where false"
    )
    published = (
        "select contact_id from segments_serving.segment_members "
        "where account_id = %(account)s and segment_key = %(key)s"
    )
    params = {"account": account, "key": key, "as_of": AS_OF}
    cand = {r[0] for r in db.execute(candidate, params)}
    pub = {r[0] for r in db.execute(published, params)}
    return {
        "published": len(pub),
        "candidate": len(cand),
        "entered": sorted(cand - pub),
        "exited": sorted(pub - cand),
    }


def _run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = cli.main(["diff", "--format", "json", "--limit", "1000", *args])
    return code, json.loads(capsys.readouterr().out)


def test_diff_shows_changed_new_and_removed_segments_and_publishes_nothing(
    project: Path, db: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    defs = project / "segment_defs"
    before = fingerprint(db)
    definitions_before = db.execute(
        "select count(*) from segments_history.published_definitions"
    ).fetchone()[0]

    # Nothing changed yet: nothing listed.
    code, doc = _run_json(capsys)
    assert code == 0 and doc["changed"] == 0 and doc["accounts"] == {}

    template = defs / "_all" / "whatsapp_reachable.yml"
    original = template.read_text()
    head = original.split("where:")[0]
    template.write_text(head + CHANGED_WHERE)
    (defs / "acme" / "diff_new.yml").write_text(NEW_SEGMENT)
    removed = defs / "acme" / "birthday_this_week.yml"
    removed_text = removed.read_text()
    removed.unlink()
    try:
        code, doc = _run_json(capsys, "--fail-on-change-pct", "0")
        assert code == 1
        assert doc["as_of"] == AS_OF.isoformat()
        listed = {
            (account, s["segment"]): s for account, segs in doc["accounts"].items() for s in segs
        }
        published_keys = {
            tuple(r)
            for r in db.execute(
                "select account_id, segment_key from segments_serving.segments"
            ).fetchall()
        }
        wanted = {(a, "whatsapp_reachable") for a, k in published_keys if k == "whatsapp_reachable"}
        assert len(wanted) == 2
        wanted |= {("acme", "diff_new"), ("acme", "birthday_this_week")}
        # unchanged segments (every other published one) are not listed
        assert set(listed) == wanted
        over = sorted(f"{a}/{k}" for (a, k), seg in listed.items() if seg["change_pct"] > 0)
        assert over and sorted(doc["over_limit"]) == over

        for (account, key), seg in listed.items():
            rule = None if key == "birthday_this_week" else CANDIDATE_SQL[key]
            want = _expected_changes(db, account, key, rule)
            assert seg["entered_sample"] == want["entered"], (account, key)
            assert seg["exited_sample"] == want["exited"], (account, key)
            assert seg["entered"] == len(want["entered"])
            assert seg["exited"] == len(want["exited"])
            assert seg["published"] == want["published"]
            if key != "birthday_this_week":
                assert seg["candidate"] == want["candidate"]
        changed = listed[("acme", "whatsapp_reachable")]
        assert changed["status"] == "changed"
        assert changed["entered"] + changed["exited"] > 0
        expected_pct = round(
            100 * (changed["entered"] + changed["exited"]) / changed["published"], 2
        )
        assert changed["change_pct"] == expected_pct
        lines = changed["definition_diff"].splitlines()
        assert any(line.startswith("-") and "field: phone, op: is_set}" in line for line in lines)
        assert any(
            line.startswith("+") and "field: loyalty_points, op: gte, value: '2000'}" in line
            for line in lines
        )
        assert listed[("acme", "diff_new")]["status"] == "new"
        assert listed[("acme", "diff_new")]["change_pct"] == 100.0
        gone = listed[("acme", "birthday_this_week")]
        assert gone["status"] == "removed" and gone["candidate"] == 0
        assert gone["definition_diff"].startswith("--- published/acme/birthday_this_week")

        # markdown: the table per account, exit 0 at a limit no segment exceeds
        limit = max(s["change_pct"] for s in listed.values())
        capsys.readouterr()
        code = cli.main(["diff", "--format", "markdown", "--fail-on-change-pct", str(limit)])
        text = capsys.readouterr().out
        assert code == 0
        assert "### acme" in text and "### globex" in text
        assert "| segment | status | published | candidate | entered | exited | change % |" in text
        row = (
            f"| `whatsapp_reachable` | changed | {changed['published']} | "
            f"{changed['candidate']} | {changed['entered']} | {changed['exited']} | "
            f"{changed['change_pct']:g} |"
        )
        assert row in text
        assert "<summary>acme/birthday_this_week: definition (removed)</summary>" in text
        assert "```diff" in text

        # PATHS: only the definitions in that file
        code, doc = _run_json(capsys, str(defs / "acme" / "diff_new.yml"))
        assert code == 0
        assert [s["segment"] for s in doc["accounts"]["acme"]] == ["diff_new"]
        assert set(doc["accounts"]) == {"acme"}
    finally:
        template.write_text(original)
        removed.write_text(removed_text)
        (defs / "acme" / "diff_new.yml").unlink(missing_ok=True)

    assert fingerprint(db) == before
    assert (
        db.execute("select count(*) from segments_history.published_definitions").fetchone()[0]
        == definitions_before
    )


def test_a_stale_segment_is_refused_unless_allowed(
    project: Path, db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    account, key = biggest_segment(db)
    want = serving_members(db, account, key)
    # The candidate as it stands, with this segment quarantined: it keeps its membership.
    publish_step.publish(
        AS_OF, "manual__stale", {(account, key): "member count 1 is below min_members 5"}
    )
    assert serving_members(db, account, key) == want
    out = tmp_path / "stale.csv"
    capsys.readouterr()
    assert cli.main(["export", f"{account}/{key}", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    days = (pipeline.today() - AS_OF).days
    assert err == (
        f"error: {account}/{key} is stale (member count 1 is below min_members 5): its "
        f"membership is {days} day(s) old (as of {AS_OF}); pass --allow-stale to export it "
        "anyway."
    )
    assert not out.exists()

    assert cli.main(["export", f"{account}/{key}", "--out", str(out), "--allow-stale"]) == 0
    rows = list(csv.reader(out.open(newline="")))
    assert [tuple(r) for r in rows[1:]] == as_text(want)
    assert "is stale" in capsys.readouterr().err
