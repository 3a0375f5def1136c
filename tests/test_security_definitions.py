"""Security of the definition author's input (issue 8: H1, M5, M6, M8 and the custom-key
finding): hostile YAML is refused with file:line:col, or arrives as literal data; it never
runs as Jinja, never breaks the build for every account, and a removed definition leaves
nothing behind.

The validation cases need no dbt; the build cases run the real pipeline steps
(check_sources, build) on a copy of the project with demo data and read what dbt wrote
back from PostgreSQL (pg_description, the catalogue models)."""

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
from _segments import project_dir

from segmentation import demo_data, pipeline
from segmentation.definitions import api
from segmentation.definitions.loader import MAX_BYTES
from segmentation.definitions.project import load_definitions
from segmentation.definitions.regex import postgres_regex_check
from segmentation.errors import DefinitionError

VALID = """\
key: {key}
name: Loyal customers
account: {account}
owner: growth-team
visibility: team
where:
  all:
    - {{field: lifecycle_stage, op: eq, value: customer}}
    - {{field: loyalty_points, op: gte, value: 5000}}
"""
CONDITION_LINE = 9  # the loyalty_points condition of VALID


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "segment_defs").mkdir()
    with project_dir(tmp_path):
        yield tmp_path


def write(project: Path, rel: str, text: str) -> Path:
    path = project / "segment_defs" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def errors(**kwargs: object) -> list[str]:
    return [str(e) for e in load_definitions(None, None, **kwargs).errors]  # type: ignore[arg-type]


def with_condition(condition: str, key: str = "x") -> str:
    return VALID.format(key=key, account="acme").replace(
        "{field: loyalty_points, op: gte, value: 5000}", condition
    )


# --- M5: alias bombs ------------------------------------------------------------------------

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_yaml_alias_bomb_is_refused_at_the_first_alias(project: Path) -> None:
    write(project, "acme/x.yml", BILLION_LAUGHS)
    assert errors() == [
        "segment_defs/acme/x.yml:2:8: YAML aliases (*a) are not supported in definitions: "
        "write the value out where it is used"
    ]


def test_any_alias_is_refused_with_its_position(project: Path) -> None:
    text = VALID.format(key="x", account="acme").replace(
        "owner: growth-team", "owner: &who growth-team\ndescription: *who"
    )
    write(project, "acme/x.yml", text)
    assert errors() == [
        "segment_defs/acme/x.yml:5:14: YAML aliases (*who) are not supported in definitions: "
        "write the value out where it is used"
    ]


def test_deep_nesting_and_huge_files_are_errors_not_crashes(project: Path) -> None:
    write(project, "acme/deep.yml", "key: " + "[" * 5000 + "]" * 5000 + "\n")
    write(project, "acme/huge.yml", "key: x\n# " + "x" * MAX_BYTES + "\n")
    assert errors() == [
        "segment_defs/acme/deep.yml:1:1: nesting deeper than 64 levels",
        f"segment_defs/acme/huge.yml:1:1: the file is larger than {MAX_BYTES // 1024} KiB",
    ]


# --- M6: definitions that validated but broke the build --------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", r'"x \ud800 y"', "this text contains a lone UTF-16 surrogate \\ud800"),
        (
            "name",
            r'"party \ud83d\ude00"',
            "this text contains the UTF-16 surrogate pair \\ud83d\\ude00 (JSON-style escape): "
            "write the character itself (\U0001f600) or \\U0001F600",
        ),
        ("owner", r'"a\0b"', "this text contains a NUL character"),
        ("description", r'"\udfff"', "this text contains a lone UTF-16 surrogate \\udfff"),
    ],
)
def test_unencodable_text_in_any_field_is_an_error(
    project: Path, field: str, value: str, message: str
) -> None:
    text = VALID.format(key="x", account="acme")
    if field == "description":
        text = text.replace("owner:", f"description: {value}\nowner:")
    else:
        text = "\n".join(
            f"{field}: {value}" if line.startswith(f"{field}:") else line
            for line in text.splitlines()
        )
    write(project, "acme/x.yml", text + "\n")
    [error] = errors()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith(f"{field}:"))
    assert error.startswith(f"segment_defs/acme/x.yml:{line}:{len(field) + 3}: {message}")


def test_surrogates_in_keys_and_condition_values_are_errors(project: Path) -> None:
    write(project, "acme/x.yml", with_condition(r'{field: city, op: eq, value: "J\udc00"}'))
    write(project, "acme/y.yml", with_condition(r'{"fi\ud800eld": city, op: eq, value: x}', "y"))
    assert [e.split(": this text")[0] for e in errors() if ": this text" in e] == [
        "segment_defs/acme/x.yml:9:36",
        "segment_defs/acme/y.yml:9:8",
    ]


def test_a_real_emoji_is_accepted(project: Path) -> None:
    write(project, "acme/x.yml", VALID.format(key="x", account="acme").replace("Loyal", "🎉 Loyal"))
    assert errors() == []


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            "{field: created_at, op: within_last, value: {years: 100000}}",
            "a duration's years must be a whole number from 0 to 100 (about 100 years), got 100000",
        ),
        (
            "{field: date_of_birth, op: anniversary_within_next, value: {months: 1201}}",
            "a duration's months must be a whole number from 0 to 1200 (about 100 years), got 1201",
        ),
        (
            "{field: created_at, op: more_than_ago, value: {weeks: 5201}}",
            "a duration's weeks must be a whole number from 0 to 5200 (about 100 years), got 5201",
        ),
        (
            "{field: created_at, op: within_next, value: {days: 36601}}",
            "a duration's days must be a whole number from 0 to 36600 (about 100 years), got 36601",
        ),
    ],
)
def test_every_duration_is_bounded(project: Path, condition: str, message: str) -> None:
    write(project, "acme/x.yml", with_condition(condition))
    [error] = errors()
    assert error.endswith(message)
    assert error.startswith(f"segment_defs/acme/x.yml:{CONDITION_LINE}:")


def test_expect_bounds_fit_the_catalogue_columns(project: Path) -> None:
    text = VALID.format(key="x", account="acme").replace(
        "where:", "expect: {min_members: 2147483648, max_change_pct: 1.0e+300}\nwhere:"
    )
    write(project, "acme/x.yml", text)
    assert errors() == [
        "segment_defs/acme/x.yml:6:23: 'expect.min_members' must be at most 2147483647",
        "segment_defs/acme/x.yml:6:51: 'expect.max_change_pct' must be at most 1000000",
    ]


@pytest.mark.parametrize("field", ["name", "description", "owner"])
def test_the_comment_quote_tag_is_refused_in_comment_text(project: Path, field: str) -> None:
    text = VALID.format(key="x", account="acme")
    hostile = "a $dbt_comment_literal_block$; drop table crm_raw.contacts; --"
    if field == "description":
        text = text.replace("owner:", f"description: {hostile}\nowner:")
    else:
        text = "\n".join(
            f"{field}: {hostile}" if line.startswith(f"{field}:") else line
            for line in text.splitlines()
        )
    write(project, "acme/x.yml", text + "\n")
    [error] = errors()
    assert error.endswith(
        f"'{field}' must not contain '$dbt_comment_literal_block$' "
        "(dbt quotes table comments with it)"
    )


def test_keys_and_accounts_with_a_trailing_newline_are_refused(project: Path) -> None:
    # A file name may end in a newline too: the key would match it.
    write(project, "acme/x\n.yml", VALID.format(key='"x\\n"', account="acme"))
    write(project, "acme\n/y.yml", VALID.format(key="y", account='"acme\\n"'))
    assert errors() == [
        "segment_defs/acme\n/y.yml:3:10: account 'acme\n' is not a valid account id",
        "segment_defs/acme/x\n.yml:1:6: key 'x\n' must be snake_case: a lower-case letter, "
        "then lower-case letters, digits or underscores (at most 48 characters)",
    ]


def test_custom_field_keys_with_a_trailing_newline_are_refused(project: Path) -> None:
    write(project, "acme/x.yml", with_condition(r'{field: "custom.vip\n", op: gte, value: 2}'))
    [error] = errors()
    assert error.startswith(
        "segment_defs/acme/x.yml:9:15: invalid custom field name 'custom.vip\n'"
    )


def test_in_segment_and_group_keys_with_a_trailing_newline_are_refused(project: Path) -> None:
    write(project, "acme/x.yml", with_condition(r'{in_segment: "y\n"}'))
    [error] = errors()
    assert error.startswith("segment_defs/acme/x.yml:9:20: in_segment needs a segment key")


def test_model_names_longer_than_postgres_identifiers_are_refused(project: Path) -> None:
    account = "a" * 40
    key = "k" * 30  # seg__ + 40 + __ + 30 = 77 characters
    write(project, f"{account}/{key}.yml", VALID.format(key=key, account=account))
    write(project, f"{account}/{'k' * 16}.yml", VALID.format(key="k" * 16, account=account))
    assert errors() == [
        f"segment_defs/{account}/{key}.yml:1:6: the model name 'seg__{account}__{key}' is 77 "
        "characters; PostgreSQL names are at most 63: shorten the key (at most 16 characters "
        "for this account)"
    ]


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("(?P<n>a)", "uses the group '(?P<...' (named groups, flags, ...)"),
        ("a{300}", "uses the repetition '{300}' (at most 255)"),
        ("a*+", "uses a possessive quantifier like '*+'"),
        ("[[:nope:]]", "uses a '[:' that is not a character class like [:alpha:]"),
    ],
)
def test_offline_regexes_get_a_conservative_check(
    project: Path, pattern: str, problem: str
) -> None:
    condition = f"{{field: email, op: matches, value: '{pattern}'}}"
    write(project, "acme/x.yml", with_condition(condition))
    [error] = errors()
    assert error.startswith(
        f"segment_defs/acme/x.yml:9:42: the value of 'matches' on string field 'email' {problem}"
    )
    assert "checked offline, without the database" in error


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


def test_has_filters_use_the_same_regex_check(project: Path) -> None:
    condition = "{has: {object: deals, where: {field: stage, op: matches, value: '(?P<n>a)'}}}"
    write(project, "acme/x.yml", with_condition(condition))
    [error] = errors()
    assert "the group '(?P<...'" in error
    assert error.startswith("segment_defs/acme/x.yml:9:")


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


def _stale_generated_state(project: Path) -> None:
    """What a removed or broken definition can leave behind in the generated folders."""
    models = project / "models/segments/generated"
    models.mkdir(parents=True, exist_ok=True)
    (models / "seg__acme__ghost.sql").write_text(
        "{{ exceptions.raise_compiler_error('stale generated file') }}\n"
    )
    (models / "leftover.sql").write_text("select * from {{ ref('seg__acme__gone') }}\n")
    macros = project / "macros/segments/generated"
    macros.mkdir(parents=True, exist_ok=True)
    (macros / "segment_registry.sql").write_text(
        "{% macro postgres__segment_registry() %}{{ return(fromjson("
        '\'{"segments": [{"model": "seg__acme__gone", "enabled": true}]}\')) }}{% endmacro %}\n'
    )


@pytest.mark.slow
def test_a_run_regenerates_stale_generated_files_before_its_first_dbt_step(
    pipeline_project: Path,
) -> None:
    project = pipeline_project
    _write_hostile_set(project)
    _stale_generated_state(project)

    pipeline.check_sources()  # the DAG's first step parses the whole project

    assert not (project / "models/segments/generated/seg__acme__ghost.sql").exists()
    assert not (project / "models/segments/generated/leftover.sql").exists()


@pytest.mark.slow
def test_removing_a_bad_definition_heals_the_pipeline(
    pipeline_project: Path, db: psycopg.Connection
) -> None:
    project = pipeline_project
    _write_hostile_set(project)
    _stale_generated_state(project)
    bad = write(project, "acme/broken.yml", "key: broken\nname: [unclosed\n")

    pipeline.check_sources()  # invalid definitions: the generated files are removed
    assert list((project / "models/segments/generated").iterdir()) == []
    with pytest.raises(DefinitionError, match=r"segment_defs/acme/broken\.yml:3:1: YAML syntax"):
        pipeline.validate()

    bad.unlink()
    pipeline.check_sources()
    pipeline.validate()
    pipeline.build(AS_OF)
    assert db.execute("select to_regclass('segments_audit.seg__acme__hostile_text')").fetchone()


def test_sync_generated_clears_the_generated_files_of_an_invalid_set(project: Path) -> None:
    _stale_generated_state(project)
    write(project, "acme/broken.yml", "key: broken\nname: [unclosed\n")
    assert api.sync_generated(offline=True) is None
    for rel in ("models/segments/generated", "macros/segments/generated"):
        assert list((project / rel).iterdir()) == []


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
