"""`segments preview` and `segments why` on the shipped definitions and demo data, after a
real build: preview's members are the built model's, its funnel matches independent counts
(the Python evaluator, hand-written SQL), why's verdicts match membership and name the
failing condition, and neither command builds or publishes anything."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from _demo import DemoWarehouse, environ, staged_rows
from _segments import PROJECT_DIR, copy_project, project_dir
from _segments_eval import Evaluator
from psycopg import sql

from segmentation.cli import main as cli
from segmentation.compiler.preview import preview_tree, summary
from segmentation.compiler.sources import load_definitions
from segmentation.language.model import Node, Segment
from segmentation.warehouse import bootstrap, database
from segmentation_dev import demo_data

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 11, 22)
# Shipped definitions with contact and company fields (the Python evaluator), activity
# (has:) and references (in_segment); acme is a plus account, globex ultimate.
SEGMENTS = [
    "acme/enterprise_leads",
    "acme/birthday_this_week",
    "globex/whatsapp_reachable",
    "globex/loyal_buyers",
    "globex/churn_risk",
    "globex/loyal_not_at_risk",
    "globex/active_leads",
]


@dataclass
class Demo:
    project: Path
    segments: dict[tuple[str, str], Segment]
    rows: list[dict]
    before_build: tuple[int, str]  # preview on a fresh project: exit code, stderr


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def pg_template(demo_segments: DemoWarehouse) -> str:
    """A copy of the shared demo build (tests/_demo.py): the shipped definitions on the
    demo data, built for AS_OF."""
    assert demo_segments.dates == (AS_OF,)
    return demo_segments.database


def preview_before_build(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`segments preview` on a fresh project copy and a fresh database holding the raw demo
    data, nothing built yet."""
    project = copy_project(tmp_path / "project")
    shutil.rmtree(project / "segment_defs")
    shutil.copytree(PROJECT_DIR / "segment_defs", project / "segment_defs")
    name = f"segments_test_{secrets.token_hex(4)}"
    database.create_database(name)
    try:
        with environ({"PGDATABASE": name}), project_dir(project):
            bootstrap.init_db()
            demo_data.load(accounts=2, contacts=1500, seed=7, anchor=AS_OF, dbname=name)
            return subprocess.run(
                [sys.executable, "-m", "segmentation.cli.main", "preview", "acme/enterprise_leads"],
                capture_output=True,
                text=True,
                check=False,
            )
    finally:
        database.drop_database(name)


@pytest.fixture(scope="module")
def demo(
    pg_database: str, demo_segments: DemoWarehouse, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    capture = preview_before_build(tmp_path_factory.mktemp("preview"))
    with (
        psycopg.connect(dbname=pg_database, autocommit=True) as db,
        project_dir(demo_segments.project),
    ):
        segments = {(s.account, s.key): s for s in load_definitions(None, None).segments}
        rows = staged_rows(db)
    yield Demo(demo_segments.project, segments, rows, (capture.returncode, capture.stderr))


def model_members(db: psycopg.Connection, target: str) -> set[str]:
    account, key = target.split("/")
    (model,) = db.execute(
        "select model_name from segments_audit.int_segment_scopes "
        "where account_id = %s and segment_key = %s",
        (account, key),
    ).fetchone()
    rows = db.execute(
        sql.SQL("select contact_id from segments_audit.{} where account_id = %s").format(
            sql.Identifier(model)
        ),
        (account,),
    ).fetchall()
    return {r[0] for r in rows}


def definition(demo: Demo, target: str) -> Segment:
    account, key = target.split("/")
    return demo.segments.get((account, key)) or demo.segments[("*", key)]


def preview_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out, err = run(capsys, "preview", *argv, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def candidates(demo: Demo, account: str, as_of: dt.date) -> list[dict]:
    return [
        r
        for r in demo.rows
        if r["account_id"] == account and (r["created_at"] is None or r["created_at"] <= as_of)
    ]


def test_a_fresh_project_says_what_to_run(demo: Demo) -> None:
    code, err = demo.before_build
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "nothing is staged yet" in lines[0] and "segments run" in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("target", SEGMENTS)
def test_preview_members_are_the_built_models(
    demo: Demo, db: psycopg.Connection, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    with project_dir(demo.project):
        result = preview_json(capsys, target, "--as-of", AS_OF.isoformat(), "--limit", "100000")
    built = model_members(db, target)
    assert result["members"] == len(built)
    assert {m["contact_id"] for m in result["sample"]} == built
    counts = [step["count"] for step in result["funnel"]]
    assert counts, result
    if result["step_mode"] == "cumulative":
        assert counts == sorted(counts, reverse=True)  # each condition only removes
        assert counts[0] <= result["candidates"]
        assert counts[-1] == result["members"]
    elif result["step_mode"] == "branches":
        assert max(counts) <= result["members"] <= sum(counts)
    else:
        assert counts == [result["members"]]


def test_at_least_one_shipped_segment_is_not_empty(demo: Demo, db: psycopg.Connection) -> None:
    # the equalities above would hold trivially if every segment were empty
    sizes = {target: len(model_members(db, target)) for target in SEGMENTS}
    assert sum(1 for n in sizes.values() if n > 0) >= 4, sizes


@pytest.mark.parametrize("as_of", [AS_OF, AS_OF - dt.timedelta(days=45)])
def test_funnel_steps_match_the_python_evaluator(
    demo: Demo, capsys: pytest.CaptureFixture[str], as_of: dt.date
) -> None:
    """enterprise_leads: the count after each top-level condition, for the built as-of date
    and for another one (preview does not need a rebuild to move the date)."""
    target = "acme/enterprise_leads"
    seg = definition(demo, target)
    with project_dir(demo.project):
        result = preview_json(capsys, target, "--as-of", as_of.isoformat(), "--limit", "0")
    tree = preview_tree(seg)
    rows = candidates(demo, "acme", as_of)
    evaluated = [{n.id: _eval(r, as_of, seg, n.id) for n in tree.nodes} for r in rows]
    want = [sum(all(e[i] for i in step) for e in evaluated) for step in tree.steps]
    assert [s["count"] for s in result["funnel"]] == want
    assert len(want) == 4 and len(set(want)) > 1  # the funnel tells the steps apart
    assert result["candidates"] == len(rows)
    assert result["members"] == sum(e[0] for e in evaluated)


def _eval(row: dict, as_of: dt.date, seg: Segment, node_id: int) -> bool:
    node = _nodes(seg.condition)[node_id]
    return bool(Evaluator(row, as_of).visit(node))


def _nodes(root: Node) -> list[Node]:
    """The tree in pre-order, numbered as preview numbers it."""
    out = [root]
    for child in getattr(root, "nodes", ()) or ((root.node,) if hasattr(root, "node") else ()):
        out += _nodes(child)
    return out


@pytest.mark.parametrize(
    ("as_of", "built"), [(AS_OF, ["orders"]), (AS_OF - dt.timedelta(days=30), [])]
)
def test_activity_funnel_matches_hand_written_sql(
    demo: Demo,
    db: psycopg.Connection,
    capsys: pytest.CaptureFixture[str],
    as_of: dt.date,
    built: list[str],
) -> None:
    """loyal_buyers: >= 3 completed orders in the last 365 days, then also >= 1,000,000 of
    them, then also one in the last 90 days: counted here in plain SQL. On the built as-of
    date preview reads the built feature model; on another date it computes the features."""
    with project_dir(demo.project):
        result = preview_json(
            capsys, "globex/loyal_buyers", "--as-of", as_of.isoformat(), "--limit", "0"
        )
    assert result["built_features"] == built
    assert result["computed_features"] == ([] if built else ["orders"])
    want = db.execute(
        """
        with o as (
            select
                c.contact_id,
                count(*) filter (where local_day between %(d)s::date - 365 and %(d)s) as n365,
                sum(o.amount) filter (where local_day between %(d)s::date - 365 and %(d)s) as s365,
                count(*) filter (where local_day between %(d)s::date - 90 and %(d)s) as n90
            from segments_staging.stg_crm__contacts as c
            join segments_staging.stg_crm__accounts as a using (account_id)
            join segments_staging.stg_crm__orders as o using (account_id, contact_id)
            cross join lateral (select (o.ordered_at at time zone a.timezone)::date as local_day) as d
            where c.account_id = 'globex' and o.status = 'completed'
                and (o.ordered_at is null or local_day <= %(d)s)
                and (c.created_at is null or (c.created_at at time zone a.timezone)::date <= %(d)s)
            group by c.contact_id
        )
        select
            count(*) filter (where n365 >= 3),
            count(*) filter (where n365 >= 3 and s365 >= 1000000),
            count(*) filter (where n365 >= 3 and s365 >= 1000000 and n90 >= 1)
        from o
        """,  # noqa: E501
        {"d": as_of},
    ).fetchone()
    assert [s["count"] for s in result["funnel"]] == list(want)
    assert want[0] > want[2] > 0


def test_preview_text_output_from_the_console_script(demo: Demo, db: psycopg.Connection) -> None:
    script = Path(sys.executable).with_name("segments")
    with project_dir(demo.project):
        done = subprocess.run(
            [str(script), "preview", "globex/loyal_buyers", "--as-of", AS_OF.isoformat()],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "COLUMNS": "200"},
        )
    assert done.returncode == 0, done.stderr
    count = len(model_members(db, "globex/loyal_buyers"))
    assert f"globex/loyal_buyers: {count} members of" in done.stdout
    assert "Funnel" in done.stdout and "Members (first" in done.stdout
    assert "orders where status = completed in the last 365 days >= 3" in done.stdout
    assert "nothing was built or published" in done.stderr


def test_why_member_and_non_member(
    demo: Demo, db: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    target = "acme/enterprise_leads"
    seg = definition(demo, target)
    tree = preview_tree(seg)
    built = model_members(db, target)
    rows = {r["contact_id"]: r for r in candidates(demo, "acme", AS_OF)}
    member = sorted(built)[0]
    # a non-member that passes the first condition and fails a later one
    outsider = next(
        cid
        for cid in sorted(rows)
        if cid not in built and _eval(rows[cid], AS_OF, seg, tree.steps[0][-1])
    )
    with project_dir(demo.project):
        for contact, is_member in ((member, True), (outsider, False)):
            code, out, err = run(
                capsys, "why", target, contact, "--as-of", AS_OF.isoformat(), "--format", "json"
            )
            assert code == 0, err
            result = json.loads(out)
            assert result["member"] is is_member
            verdicts = {n["id"]: n["verdict"] for n in result["nodes"]}
            assert verdicts == {n.id: _eval(rows[contact], AS_OF, seg, n.id) for n in tree.nodes}
            failing = [
                tree.nodes[step[-1]].label
                for step in tree.steps
                if not _eval(rows[contact], AS_OF, seg, step[-1])
            ]
            assert result["failing"] == ([] if is_member else failing)
        assert failing and tree.nodes[tree.steps[0][-1]].label not in failing
        code, out, err = run(capsys, "why", target, outsider, "--as-of", AS_OF.isoformat())
    assert code == 0, err
    assert f"{outsider}" in out and "is not a member of acme/enterprise_leads" in out
    assert "fails: " + "; ".join(failing) in err
    # the value read next to its verdict, e.g. "lifecycle_stage: customer, needs one of [...]"
    stage = rows[outsider]["lifecycle_stage"]
    assert f"lifecycle_stage: {stage}, needs one of [lead," in out


def test_why_shows_feature_values(
    demo: Demo, db: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    target = "globex/loyal_buyers"
    contact, completed = db.execute(
        """
        select c.contact_id, count(*)
        from segments_staging.stg_crm__contacts as c
        join segments_staging.stg_crm__accounts as a using (account_id)
        join segments_staging.stg_crm__orders as o using (account_id, contact_id)
        where c.account_id = 'globex' and o.status = 'completed'
            and (o.ordered_at at time zone a.timezone)::date between %(d)s::date - 365 and %(d)s
        group by c.contact_id
        having count(*) between 1 and 2
        order by c.contact_id
        limit 1
        """,
        {"d": AS_OF},
    ).fetchone()
    with project_dir(demo.project):
        code, out, err = run(capsys, "why", target, contact, "--as-of", AS_OF.isoformat())
    assert code == 0, err
    assert "is not a member" in out
    label = "orders where status = completed in the last 365 days"
    assert f"✗ {label}: {completed}, needs >= 3" in out
    assert contact not in model_members(db, target)


def test_unknown_contact_segment_and_account(
    demo: Demo, capsys: pytest.CaptureFixture[str]
) -> None:
    with project_dir(demo.project):
        code, out, err = run(capsys, "why", "acme/enterprise_leads", "acme-c00005x")
        assert code == 1
        (line,) = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert "no contact 'acme-c00005x' in account 'acme'" in line
        assert "did you mean" in line and "acme-c00005" in line
        code, out, err = run(capsys, "preview", "acme/enterprise_lead")
        assert code == 1
        assert "no segment 'enterprise_lead'" in out + err
        code, out, err = run(capsys, "preview", "acmee/enterprise_leads")
        assert code == 1
        assert "did you mean" in out + err
        code, out, err = run(capsys, "preview", "acme/enterprise_leads", "--format", "xml")
        assert code == 2
        # acme is a plus account: the activity templates are not built for it
        code, out, err = run(capsys, "preview", "acme/loyal_buyers")
        assert code == 1
        (line,) = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert "not built for account 'acme'" in line and "package 'plus'" in line
        code, out, err = run(capsys, "preview", "_all/loyal_buyers")
        assert code == 1
        assert "name it as <account>/loyal_buyers" in err


def test_preview_builds_and_publishes_nothing(
    demo: Demo, db: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    def snapshot() -> list[tuple]:
        return db.execute(
            "select n.nspname, c.relname, c.relkind, "
            "pg_relation_filenode(c.oid), "
            "coalesce(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0) "
            "from pg_class as c join pg_namespace as n on n.oid = c.relnamespace "
            "left join pg_stat_user_tables as s on s.relid = c.oid "
            "where n.nspname like 'segments%%' order by 1, 2"
        ).fetchall()

    as_of_before = db.execute("select * from segments_audit.int_segment_as_of").fetchall()
    before = snapshot()
    with project_dir(demo.project):
        preview_json(capsys, "globex/loyal_buyers", "--as-of", "2026-01-15")
        code, _, err = run(capsys, "why", "globex/loyal_buyers", "globex-c000002")
        assert code == 0, err
    assert snapshot() == before
    assert db.execute("select * from segments_audit.int_segment_as_of").fetchall() == as_of_before


def test_labels_read_like_the_rule(demo: Demo) -> None:
    tree = preview_tree(definition(demo, "globex/churn_risk"))
    assert [n.summary for n in tree.nodes[1:]] == [
        "lifecycle_stage one of [customer, evangelist]",
        "latest ordered_at of orders where status = completed more than 90 days ago",
        "conversations in the last 60 days = 0",
    ]
    assert summary(definition(demo, "globex/loyal_not_at_risk").condition) == (
        "all of (in segment loyal_buyers; not (in segment churn_risk))"
    )
