"""Security of the definition author's input on a real database and real dbt (issue 8: H1,
M6, M8): regexes checked by PostgreSQL, and the pipeline steps (check_sources, build) on a
copy of the project with demo data, reading what dbt wrote back from PostgreSQL
(pg_description, the catalogue models). The validation cases are in
tests/unit/test_security_definitions.py."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml
from _activity import project_copy
from _definitions import errors, stale_generated_state, with_condition, write
from _segments import project_dir

from segmentation.errors import DefinitionError
from segmentation.steps import pipeline
from segmentation.warehouse.catalog import postgres_regex_check
from segmentation_dev import demo_data


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "segment_defs").mkdir()
    with project_dir(tmp_path):
        yield tmp_path


def test_regexes_are_checked_by_postgres_when_it_is_reachable(
    project: Path, db: psycopg.Connection
) -> None:
    """(?P<n>a) and a{300} fail in PostgreSQL; (?i) and a{2,5} are fine there."""
    cases = {"a": "(?P<n>a)", "b": "a{300}", "c": "(?i)^foo", "d": "^a{2,5}$"}
    for key, pattern in cases.items():
        write(
            project,
            f"acme/{key}.yml",
            with_condition(f'{{field: email, op: matches, value: "{pattern}"}}', key),
        )
    assert errors(regex_check=postgres_regex_check(db)) == [
        "segment_defs/acme/a.yml:9:42: the value of 'matches' on string field 'email' is not a "
        "valid PostgreSQL regular expression: invalid regular expression: invalid embedded "
        "option (checked by PostgreSQL)",
        "segment_defs/acme/b.yml:9:42: the value of 'matches' on string field 'email' is not a "
        "valid PostgreSQL regular expression: invalid regular expression: invalid repetition "
        "count(s) (checked by PostgreSQL)",
    ]
    # and the offline check is the conservative one: it refuses (?i), which PostgreSQL runs
    assert [e.split(": ")[0] for e in errors()] == [
        "segment_defs/acme/a.yml:9:42",
        "segment_defs/acme/b.yml:9:42",
        "segment_defs/acme/c.yml:9:42",
    ]


# --- the pipeline on real dbt: H1 (Jinja), removed definitions, M8 (stale generated files) ---

AS_OF = dt.date.today()
MARK = "hostile-marker-7f3a"
SECRET_VAR = "SEGMENTS_TEST_SECRET"
JINJA = [
    "{{ env_var('PGPASSWORD', 'no-pgpassword') }} {{ env_var('" + SECRET_VAR + "') }}",
    "{{ target.user }}@{{ target.host }}",
    "{{ exceptions.raise_compiler_error('x') }}",
    "{% raw %}{% endraw %}{{ env_var('" + SECRET_VAR + "') }}{# c #}",
    "{%- endraw -%}{{ env_var('" + SECRET_VAR + "') }} {%- raw -%}",
    "{% if true %}{{ 7 * 7 }}{% endif %} {{ doc('x') }} {{ var('as_of') }}",
]
OTHER = ["x'; drop table crm_raw.contacts; -- $$ $q$", 'back\\slash "dq" `bt`', "party 🎉 ünï"]
NAME = f"{MARK} {JINJA[0]} 🎉"
DESCRIPTION = f"{MARK}\n" + "\n".join(JINJA + OTHER)
OWNER = f"{MARK} {JINJA[2]} {JINJA[1]}\n"  # ends in a newline: it must arrive too
TAGS = [MARK, *JINJA, *OTHER]


def _dq(text: str) -> str:
    """A double-quoted YAML scalar for any text."""
    return yaml.safe_dump(text, default_style='"', allow_unicode=True, width=10**6).strip()


def _hostile_definition(account: str, key: str) -> str:
    values = ", ".join(_dq(t) for t in TAGS)
    return textwrap.dedent(
        f"""\
        key: {key}
        name: {_dq(NAME)}
        description: {_dq(DESCRIPTION)}
        account: "{account}"
        owner: {_dq(OWNER)}
        visibility: team
        tags: [{values}]
        where:
          any:
            - {{field: email, op: is_set}}
            - {{field: full_name, op: eq, value: {_dq(JINJA[0])}}}
            - {{field: city, op: in, value: [{values}]}}
            - {{field: custom.{"x" * 10}, op: contains, value: {_dq(JINJA[2])}}}
            - has: {{object: orders, where: {{field: status, op: eq, value: {_dq(JINJA[3])}}}}}
        """
    )


PLAIN = """\
key: plain
name: Plain
account: acme
owner: tests
visibility: team
where: {field: email, op: is_set}
"""


@pytest.fixture(scope="module")
def pipeline_project(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    os.environ[SECRET_VAR] = "secret-" + secrets.token_hex(8)
    demo_data.load(accounts=1, contacts=300, seed=11, anchor=AS_OF)
    with project_copy(tmp_path_factory.mktemp("security_defs") / "project") as project:
        yield project
    os.environ.pop(SECRET_VAR, None)


def _defs(project: Path) -> Path:
    return project / "segment_defs"


def _write_hostile_set(project: Path) -> None:
    write(project, "acme/plain.yml", PLAIN)
    write(project, "acme/hostile_text.yml", _hostile_definition("acme", "hostile_text"))
    write(project, "_all/hostile_template.yml", _hostile_definition("*", "hostile_template"))
    group = textwrap.dedent(
        f"""\
        group: hostile_group
        name: {_dq(NAME)}
        description: {_dq(DESCRIPTION)}
        order: [hostile_text, plain]
        """
    )
    write(project, "acme/_groups/hostile_group.yml", group)


def _comments(db: psycopg.Connection) -> dict[str, str]:
    """Every comment in the database, by the object it is on."""
    rows = db.execute(
        "select coalesce(c.oid::regclass::text, d.objoid::text) || coalesce('.' || a.attname, ''),"
        " d.description from pg_description as d"
        " left join pg_class as c on d.classoid = 'pg_class'::regclass and c.oid = d.objoid"
        " left join pg_attribute as a on a.attrelid = c.oid and a.attnum = d.objsubid"
        " and d.objsubid > 0"
    ).fetchall()
    return dict(rows)


def _secrets() -> list[str]:
    found = [os.environ[SECRET_VAR]]
    if os.environ.get("PGPASSWORD"):
        found.append(os.environ["PGPASSWORD"])
    user, host = os.environ.get("PGUSER", ""), os.environ.get("PGHOST", "")
    if user and host:
        found.append(f"{user}@{host}")
    return found


@pytest.mark.slow
def test_free_text_of_every_field_arrives_literally_and_leaks_nothing(
    pipeline_project: Path, db: psycopg.Connection
) -> None:
    project = pipeline_project
    _write_hostile_set(project)
    pipeline.build(AS_OF)

    expected = f"{NAME}. {DESCRIPTION} (owner: {OWNER})"
    comments = _comments(db)
    assert comments["segments_audit.seg__acme__hostile_text"] == expected
    assert comments["segments_audit.seg__all__hostile_template"] == expected
    for text in comments.values():
        for secret in _secrets():
            assert secret not in text
    catalogue = db.execute(
        "select segment_key, name, description, owner, tags"
        " from segments_audit.segment_catalogue where segment_key like 'hostile%'"
        " order by segment_key"
    ).fetchall()
    assert catalogue == [
        ("hostile_template", NAME, DESCRIPTION, OWNER, TAGS),
        ("hostile_text", NAME, DESCRIPTION, OWNER, TAGS),
    ]
    [group_name] = db.execute(
        "select group_name from segments_audit.int_group_catalogue"
        " where group_key = 'hostile_group'"
    ).fetchone() or [None]
    assert group_name == NAME
    members = db.execute(
        "select count(*) from segments_audit.segment_memberships where segment_key = 'hostile_text'"
    ).fetchone()
    assert members is not None and members[0] > 0  # email is_set: the rules ran as data


@pytest.mark.slow
def test_removed_definitions_leave_no_table_or_comment(
    pipeline_project: Path, db: psycopg.Connection
) -> None:
    project = pipeline_project
    _write_hostile_set(project)
    pipeline.build(AS_OF)
    assert any(MARK in text for text in _comments(db).values())
    for rel in ("acme/hostile_text.yml", "_all/hostile_template.yml", "acme/_groups"):
        path = _defs(project) / rel
        if path.is_dir():
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
        else:
            path.unlink()

    pipeline.build(AS_OF)

    left = db.execute(
        "select relname from pg_class where relnamespace = 'segments_audit'::regnamespace"
        " and relname like 'seg\\_\\_%' order by relname"
    ).fetchall()
    assert left == [("seg__acme__plain",)]
    assert [t for t in _comments(db).values() if MARK in t] == []


@pytest.mark.slow
def test_a_run_regenerates_stale_generated_files_before_its_first_dbt_step(
    pipeline_project: Path,
) -> None:
    project = pipeline_project
    _write_hostile_set(project)
    stale_generated_state(project)

    pipeline.check_sources()  # the DAG's first step parses the whole project

    assert not (project / "models/segments/generated/seg__acme__ghost.sql").exists()
    assert not (project / "models/segments/generated/leftover.sql").exists()


@pytest.mark.slow
def test_removing_a_bad_definition_heals_the_pipeline(
    pipeline_project: Path, db: psycopg.Connection
) -> None:
    project = pipeline_project
    _write_hostile_set(project)
    stale_generated_state(project)
    # An invalid template (an account's own invalid file only leaves that account out).
    bad = write(project, "_all/broken.yml", "key: broken\nname: [unclosed\n")

    pipeline.check_sources()  # invalid definitions: the generated files are removed
    assert list((project / "models/segments/generated").iterdir()) == []
    with pytest.raises(DefinitionError, match=r"segment_defs/_all/broken\.yml:3:1: YAML syntax"):
        pipeline.validate()

    bad.unlink()
    pipeline.check_sources()
    pipeline.validate()
    pipeline.build(AS_OF)
    healed = db.execute("select to_regclass('segments_audit.seg__acme__hostile_text')").fetchone()
    assert healed is not None and healed[0] is not None


def _at_the_bounds() -> dict[str, str]:
    """Definitions with every value at the edge of what validation accepts."""
    long_text = "x" * 1000
    many = ", ".join(f'"v{i}"' for i in range(1000))
    conditions = [
        "{field: created_at, op: within_last, value: {years: 100}}",
        "{field: created_at, op: more_than_ago, value: {days: 36600}}",
        "{field: date_of_birth, op: within_next, value: {weeks: 5200}}",
        "{field: date_of_birth, op: anniversary_within_next, value: {months: 1200}}",
        "{field: created_at, op: between, value: [0001-01-01, 9999-12-31]}",
        "{field: date_of_birth, op: after, value: 9999-12-31}",
        "{field: loyalty_points, op: gte, value: 1.0e+308}",
        "{field: loyalty_points, op: lt, value: -1.0e-300}",
        f"{{field: custom.{'k' * 63}, op: between, value: [-{'9' * 4000}, {'9' * 4000}]}}",
        f"{{field: custom._{'k' * 62}, type: date, op: on, value: 0001-01-01}}",
        f"{{field: city, op: in, value: [{many}]}}",
        f'{{field: city, op: eq, value: "{long_text}"}}',
        "{field: email, op: matches, value: '^(?:a|b){0,255}(?=c)[[:alpha:]\\d]$'}",
        "{has: {object: orders, within: {last_days: 36600}, count: {gte: " + "9" * 40 + "}}}",
        "{has: {object: deals, within: {between: [0001-01-01, 9999-12-31]}, "
        "max: {field: closed_at, op: within_last, value: {years: 100}}}}",
    ]
    where = "\n".join(f"    - {c}" for c in conditions)
    key = "k" * 48  # with account acme1234: 63 characters, the longest PostgreSQL keeps
    body = textwrap.dedent(
        f"""\
        key: {key}
        name: "{long_text}"
        description: "{long_text}"
        account: acme1234
        owner: "{long_text}"
        visibility: team
        tags: [{", ".join(f'"{long_text}"' for _ in range(3))}]
        expect: {{min_members: 0, max_members: 2147483647, max_change_pct: 1000000}}
        where:
          any:
        """
    )
    return {f"acme1234/{key}.yml": body + where + "\n"}


@pytest.mark.slow
def test_definitions_at_every_bound_build(pipeline_project: Path, db: psycopg.Connection) -> None:
    """What validates also builds: each bound above is one PostgreSQL still accepts."""
    project = pipeline_project
    write(project, "acme/plain.yml", PLAIN)
    for rel, text in _at_the_bounds().items():
        write(project, rel, text)
    db.execute(
        "insert into crm_raw.accounts (account_id, name, package, timezone)"
        " values ('acme1234', 'Bounds', 'ultimate', 'Asia/Jakarta')"
    )
    try:
        pipeline.validate()
        pipeline.build(AS_OF)
        model = "seg__acme1234__" + "k" * 48
        assert len(model) == 63
        found = db.execute("select to_regclass(%s)::text", (f"segments_audit.{model}",))
        assert found.fetchone() == (f"segments_audit.{model}",)
    finally:
        db.execute("delete from crm_raw.accounts where account_id = 'acme1234'")
        shutil.rmtree(project / "segment_defs" / "acme1234")
