"""examples/broadcast_reader.py runs as a Broadcast login and prints its account's recipients.

Every test runs with both kinds of login (docs/security.md): one granted acme and globex with
grant-reader (the default), and a multiplexer that names the account in app.account_id.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from _publish import (
    Login,
    publish_state,
    set_catalogue,
    set_contacts,
    set_membership,
)
from _serving import account_login, known_accounts, multiplexer_login

from segmentation.steps.publish import publish

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "broadcast_reader.py"


@pytest.fixture(scope="module")
def published(pg_database: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dbname=pg_database, autocommit=True) as conn, publish_state(conn):
        set_contacts(
            conn,
            [
                ("c1", "acme", "c1@example.com", "+6281200000001", True, True, False),
                ("c2", "acme", "c2@example.com", None, True, True, True),  # no phone
                ("c3", "acme", None, "+6281200000003", False, False, False),
                ("g1", "globex", "g1@example.com", "+6281200000009", True, True, True),
            ],
        )
        set_catalogue(conn, [("acme", "vip"), ("acme", "frozen"), ("globex", "vip")])
        set_membership(
            conn,
            {
                ("acme", "vip"): ["c1", "c2", "c3"],
                ("acme", "frozen"): ["c1"],
                ("globex", "vip"): ["g1"],
            },
        )
        publish(dt.date(2026, 11, 1), "r1", {})
        publish(dt.date(2026, 11, 2), "r2", {("acme", "frozen"): "member count below 2"})
        yield conn


@pytest.fixture(scope="module", params=["grant-reader", "multiplexer"])
def login(request: pytest.FixtureRequest, published: psycopg.Connection, pg_database: str):
    if request.param == "multiplexer":
        with multiplexer_login(published, pg_database) as login:
            yield login
    else:
        with account_login(published, pg_database, ["acme", "globex"]) as login:
            yield login


def run_example(login: Login, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        env=login.env(),
        timeout=60,
    )


def test_lists_recipients_of_a_segment(login: Login) -> None:
    res = run_example(login, "--account", "acme", "--segment", "vip")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "contact_id,channel,address",
        "c1,email,c1@example.com",
        "c1,whatsapp,+6281200000001",
        "c2,email,c2@example.com",
    ]
    assert "acme/vip (Vip): 3 members as of 2026-11-02" in res.stderr
    assert "stale" not in res.stderr


def test_filters_by_channel_and_warns_on_stale(login: Login) -> None:
    res = run_example(login, "--account", "acme", "--segment", "frozen", "--channel", "whatsapp")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["contact_id,channel,address", "c1,whatsapp,+6281200000001"]
    assert "as of 2026-11-01" in res.stderr
    assert "WARNING: stale" in res.stderr and "member count below 2" in res.stderr


def test_never_shows_another_accounts_rows(login: Login) -> None:
    res = run_example(login, "--account", "globex", "--segment", "vip")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "contact_id,channel,address",
        "g1,email,g1@example.com",
        "g1,sms,+6281200000009",
        "g1,whatsapp,+6281200000009",
    ]
    res = run_example(login, "--account", "initech", "--segment", "vip")
    assert res.returncode == 2
    assert "no segment 'vip' for account 'initech'" in res.stderr


def test_a_login_granted_one_account_cannot_list_another(
    published: psycopg.Connection, pg_database: str
) -> None:
    with (
        known_accounts(published, ["initech"]),
        account_login(published, pg_database, ["acme"]) as login,
    ):
        res = run_example(login, "--account", "globex", "--segment", "vip")
        assert res.returncode == 2
        assert "no segment 'vip' for account 'globex'" in res.stderr
        assert res.stdout == ""
        res = run_example(login, "--account", "acme", "--segment", "vip")
        assert res.returncode == 0, res.stderr
        assert len(res.stdout.splitlines()) == 4
