"""Security of the definition author's input (issue 8: H1, M5, M6, M8 and the custom-key
finding): hostile YAML is refused with file:line:col, or arrives as literal data; it never
runs as Jinja, never breaks the build for every account, and a removed definition leaves
nothing behind.

These are the validation cases, which need no database; the cases that check regexes with
PostgreSQL and build on real dbt are in tests/dbt/test_security_definitions_build.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _definitions import VALID, errors, stale_generated_state, with_condition, write
from _segments import project_dir

from segmentation.language.loader import MAX_BYTES
from segmentation.steps import definitions as api

CONDITION_LINE = 9  # the loyalty_points condition of VALID


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "segment_defs").mkdir()
    with project_dir(tmp_path):
        yield tmp_path


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


def test_has_filters_use_the_same_regex_check(project: Path) -> None:
    condition = "{has: {object: deals, where: {field: stage, op: matches, value: '(?P<n>a)'}}}"
    write(project, "acme/x.yml", with_condition(condition))
    [error] = errors()
    assert "the group '(?P<...'" in error
    assert error.startswith("segment_defs/acme/x.yml:9:")


def test_sync_generated_clears_the_generated_files_of_an_invalid_set(project: Path) -> None:
    # A broken template fails every account (an account's own broken file fails only that
    # account: the next test).
    stale_generated_state(project)
    write(project, "_all/broken.yml", "key: broken\nname: [unclosed\n")
    assert api.sync_generated(offline=True) is None
    for rel in ("models/segments/generated", "macros/segments/generated"):
        assert list((project / rel).iterdir()) == []


def test_sync_generated_leaves_out_only_the_account_with_a_broken_file(project: Path) -> None:
    stale_generated_state(project)
    write(project, "acme/broken.yml", "key: broken\nname: [unclosed\n")
    write(project, "acme/fine.yml", VALID.format(key="fine", account="acme"))
    write(project, "globex/loyal.yml", VALID.format(key="loyal", account="globex"))
    write(project, "_all/everyone.yml", VALID.format(key="everyone", account='"*"'))
    assert api.sync_generated(offline=True) is not None
    generated = project / "models/segments/generated"
    models = sorted(p.stem for p in generated.glob("seg__*.sql"))
    # The template still renders (its model serves globex; acme is excluded by dbt vars);
    # acme's own valid file is left out with its broken one, and the stale files are gone.
    assert len(models) == 2 and models[1] == "seg__globex__loyal", models
    assert "everyone" in models[0] and not (generated / "leftover.sql").exists()
    registry = (project / "macros/segments/generated/segment_registry.sql").read_text()
    assert "seg__acme__" not in registry and "seg__globex__loyal" in registry
    plan = api.read_plan()
    assert plan is not None and plan["errors"] == []
    [(account, cause)] = api.failed_definitions(plan).items()
    assert account == "acme"
    assert cause.startswith("invalid definition segment_defs/acme/broken.yml:")
