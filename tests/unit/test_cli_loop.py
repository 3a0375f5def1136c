"""The analytics engineer's loop, offline: `segments init` (a file that validates as it is,
never overwritten, bad names refused), `validate --format json` and its offline note, the
one-line error when the database is unreachable (the real console script, a closed port),
did you mean / disabled for `<account>/<key>`, the formatted SQL of explain, and ls's
sparkline."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from segmentation.cli import main as cli
from segmentation.compiler.render import RenderResult
from segmentation.errors import UnknownSegmentError
from segmentation.steps import definitions, listing

PROJECT = Path(__file__).resolve().parents[2]
SEGMENTS = Path(sys.executable).parent / "segments"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(PROJECT / "dbt_project.yml", tmp_path / "dbt_project.yml")
    shutil.copytree(PROJECT / "segment_defs", tmp_path / "segment_defs")
    monkeypatch.setenv("SEGMENTS_PROJECT_DIR", str(tmp_path))
    return tmp_path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is


def segments(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real console script, with the database pointed at a closed port."""
    environ = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(closed_port()), **env}
    return subprocess.run(
        [str(SEGMENTS), *args], capture_output=True, text=True, env=environ, timeout=300
    )


# --- init -------------------------------------------------------------------------------------


def test_init_writes_a_commented_file_that_validates_as_it_is(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["init", "acme/vip_whatsapp", "--offline"]) == 0
    out = capsys.readouterr().out
    path = project / "segment_defs/acme/vip_whatsapp.yml"
    assert out.strip() == "segment_defs/acme/vip_whatsapp.yml"
    text = path.read_text()
    assert text.splitlines()[0] == "# yaml-language-server: $schema=../segment.schema.json"
    assert (path.parent / "../segment.schema.json").resolve().is_file()
    assert "key: vip_whatsapp" in text and "# " in text.splitlines()[5]
    assert cli.main(["validate", "--offline", "--format", "json", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["errors"] == [] and report["segments"] == 1


def test_init_of_a_template_goes_to_all_and_validates(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["init", "_all/new_template", "--offline"]) == 0
    path = project / "segment_defs/_all/new_template.yml"
    assert 'account: "*"' in path.read_text()
    assert cli.main(["validate", "--offline", str(path)]) == 0


def test_init_refuses_to_overwrite(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "segment_defs/acme/loyal_customers.yml"
    before = path.read_text()
    assert cli.main(["init", "acme/loyal_customers", "--offline"]) == 1
    err = capsys.readouterr().err
    assert "segment_defs/acme/loyal_customers.yml already exists" in err
    assert path.read_text() == before


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("acme/VIP-List", "key 'VIP-List' must be snake_case"),
        ("acme", "'acme' is not a segment name: write <account>/<key>"),
        ("ac me/x", "account 'ac me' is not a valid account id"),
    ],
)
def test_init_rejects_bad_names_with_a_clear_message(
    project: Path, capsys: pytest.CaptureFixture[str], target: str, message: str
) -> None:
    assert cli.main(["init", target, "--offline"]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not list((project / "segment_defs").rglob("*VIP*"))


# --- validate ---------------------------------------------------------------------------------


def test_validate_json_reports_errors_with_position_and_suggestion(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = project / "segment_defs/acme/typo.yml"
    bad.write_text(
        "key: typo\nname: Typo\naccount: acme\nowner: x\nvisibility: team\n"
        "where:\n  all:\n    - {field: lifecycle_stag, op: eq, value: customer}\n"
    )
    assert cli.main(["validate", "--format", "json", str(bad)]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # exactly one JSON document on stdout
    assert report["ok"] is False
    [issue] = report["errors"]
    assert issue["file"] == "segment_defs/acme/typo.yml"
    assert (issue["line"], issue["col"]) == (8, 15)
    assert issue["message"] == "unknown field 'lifecycle_stag'"
    assert issue["suggestion"] == "lifecycle_stage"


def test_validate_says_in_one_line_that_it_checked_offline(project: Path) -> None:
    res = segments(
        "validate", "segment_defs/acme/loyal_customers.yml", SEGMENTS_PROJECT_DIR=str(project)
    )
    assert res.returncode == 0, res.stderr
    offline = [line for line in res.stderr.splitlines() if line.startswith("checked offline")]
    assert len(offline) == 1
    assert "database not reachable" in offline[0] and "PGPORT=" in offline[0]
    assert "skipped: accounts exist in crm_raw.accounts; package gating" in offline[0]
    assert "1 segment definitions OK" in res.stderr


def test_validate_json_names_the_offline_checks(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["validate", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert report["offline"].startswith("checked offline (database not reachable")


# --- the database is not reachable ------------------------------------------------------------


def test_the_real_script_says_in_one_line_that_the_database_is_unreachable(project: Path) -> None:
    port = closed_port()
    res = segments("ls", PGPORT=str(port), PGUSER="someone", SEGMENTS_PROJECT_DIR=str(project))
    assert res.returncode == 1, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: cannot reach PostgreSQL (PGHOST=127.0.0.1, ")
    assert f"PGPORT={port}" in lines[0] and "PGUSER=someone" in lines[0]
    assert "Traceback" not in res.stderr + res.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--as-of", "2026-11-20"],
        ["published"],
        ["status"],
        ["ls", "--account", "acme"],
        ["explain", "acme/loyal_customers"],
    ],
    ids=lambda a: a[0],
)
def test_every_command_that_needs_the_database_says_so_in_one_line(
    project: Path,
    args: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (project / "macros").mkdir()  # explain renders the generated files first
    (project / "models").mkdir()
    port = closed_port()
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(port))
    assert cli.main(args) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, captured.err
    assert errors[0].startswith("error: cannot reach PostgreSQL (PGHOST=127.0.0.1, ")
    assert f"PGPORT={port}" in errors[0]
    assert not captured.out


def test_a_usage_error_exits_2() -> None:
    assert cli.main(["ls", "--no-such-option"]) == 2
    assert cli.main(["init"]) == 2


# --- <account>/<key> --------------------------------------------------------------------------


def rendered(project: Path) -> RenderResult:
    plan = definitions.compile(None, offline=True)
    assert plan.ok, plan.errors
    segs = plan.segments
    return RenderResult(
        models={s.model_name: s for s in segs if s.enabled},
        disabled=[s for s in segs if not s.enabled],
    )


def test_an_unknown_segment_is_one_line_with_did_you_mean(project: Path) -> None:
    result = rendered(project)
    with pytest.raises(UnknownSegmentError) as caught:
        definitions.resolve("acme/loyal_custmers", result, plan={"accounts": None})
    message = str(caught.value)
    assert "no segment 'loyal_custmers' for account 'acme'" in message
    assert "(did you mean 'loyal_customers'?)" in message and "\n" not in message
    assert definitions.resolve_model("acme/loyal_customers", result) == (
        "seg__acme__loyal_customers"
    )


def test_an_unknown_account_offline_is_named_with_did_you_mean(project: Path) -> None:
    with pytest.raises(UnknownSegmentError, match=r"unknown account 'acmee' .*'acme'\?\)"):
        definitions.resolve("acmee/loyal_customers", rendered(project), plan={"accounts": None})


def test_a_disabled_segment_says_it_is_disabled(project: Path) -> None:
    path = project / "segment_defs/acme/loyal_customers.yml"
    path.write_text(path.read_text().replace("enabled: true", "enabled: false"))
    with pytest.raises(UnknownSegmentError) as caught:
        definitions.resolve("acme/loyal_customers", rendered(project), plan={"accounts": None})
    assert "acme/loyal_customers is disabled (enabled: false in " in str(caught.value)


def test_a_malformed_target_says_how_to_write_it(project: Path) -> None:
    with pytest.raises(UnknownSegmentError, match="write <account>/<key>"):
        definitions.resolve("loyal_customers", rendered(project), plan={"accounts": None})


# --- explain and ls helpers -------------------------------------------------------------------


def test_format_sql_lays_out_a_long_line_without_changing_a_token() -> None:
    import sqlparse

    one_line = (
        "select c.account_id, c.contact_id from contacts as c inner join as_of as a on "
        "c.account_id = a.account_id where coalesce(c.city = 'Jakarta', false) and "
        "coalesce(c.loyalty_points >= cast('5000' as numeric), false)"
    )
    formatted = definitions.format_sql(one_line)
    assert len(formatted.splitlines()) >= 5
    assert max(len(line) for line in formatted.splitlines()) < len(one_line)

    def tokens(text: str) -> list[str]:
        return [t.value.lower() for t in sqlparse.parse(text)[0].flatten() if not t.is_whitespace]

    assert tokens(formatted) == tokens(one_line)


def test_sparkline_has_one_block_per_day_and_a_gap_for_a_missing_day() -> None:
    end = dt.date(2026, 11, 20)
    points = [(end - dt.timedelta(days=d), n) for d, n in [(6, 10), (5, 20), (3, 40), (0, 80)]]
    line = listing.sparkline(points, end)
    assert len(line) == listing.TREND_DAYS
    assert line == "▁▂ ▄  █"
    assert listing.sparkline([], None) == ""


def test_the_pre_commit_hooks_run_the_projects_own_tools() -> None:
    import yaml

    config = yaml.safe_load((PROJECT / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    assert set(hooks) >= {"segments-validate", "ruff-check", "ruff-format", "sqlfluff-models"}
    assert hooks["segments-validate"]["entry"] == ".venv/bin/segments validate --offline"
    assert hooks["sqlfluff-models"]["files"] == r"^models/.*\.sql$"
    for hook in hooks.values():
        tool = next(w for w in hook["entry"].split() if w.startswith(".venv/bin/"))
        assert (PROJECT / tool.strip("\"'")).is_file(), tool
