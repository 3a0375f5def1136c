"""Publish recomputes only the recipients that can have changed (the pairs that entered or
exited, the contacts whose channels changed). Over random days of member, consent, address,
staging, catalogue and quarantine changes, the recipients it leaves are exactly the recipient
rule (warehouse/sql/recipients.sql) applied to the whole published membership, plus a
quarantined segment's frozen rows of the members no longer staged."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

import psycopg
import pytest
from _publish import publish_state, set_catalogue, set_contacts, set_membership
from psycopg import sql

from segmentation.steps.publish import publish
from segmentation.warehouse import recipients as recipient_rule

ACCOUNTS = ("acme", "globex")
SEGMENTS = ("vip", "buyers", "lapsed", "new")
CONTACTS = {a: [f"{a[0]}{i:02d}" for i in range(30)] for a in ACCOUNTS}
EMAILS = ("{c}@example.com", "{c}.new@example.com", "Not-Valid", "", None)
PHONES = ("+62812000{n:04d}", "+62813000{n:04d}", "0812-bad", "", None)
START = dt.date(2026, 11, 1)

Row = tuple[str, str, str, str, str]


@pytest.fixture
def state(db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    with publish_state(db) as conn:
        yield conn


def recipients(conn: psycopg.Connection) -> set[Row]:
    return {
        tuple(r)  # type: ignore[misc]
        for r in conn.execute(
            "select account_id, segment_key, contact_id, channel, address "
            "from segments_serving.broadcast_recipients"
        ).fetchall()
    }


def by_the_rule(conn: psycopg.Connection) -> set[Row]:
    """The rule over the whole serving membership and the staged contacts."""
    rule = recipient_rule.recipients(
        members=sql.Identifier("segments_serving", "segment_members"),
        contacts=sql.Identifier("segments_staging", "stg_crm__contacts"),
    )
    query = sql.SQL(
        "select account_id, segment_key, contact_id, channel, address from ({}) as r "
        "where r.address_valid"
    ).format(rule)
    return {tuple(r) for r in conn.execute(query, recipient_rule.rule_params()).fetchall()}  # type: ignore[misc]


def staged(conn: psycopg.Connection) -> set[tuple[str, str]]:
    rows = conn.execute("select account_id, contact_id from segments_staging.stg_crm__contacts")
    return {tuple(r) for r in rows.fetchall()}  # type: ignore[misc]


def a_day(rng: random.Random, day: int) -> tuple[list[tuple], dict, list, dict]:
    """Random contacts (some unstaged), catalogue, membership and quarantine for one day."""
    contacts, members, catalogue, quarantined = [], {}, [], {}
    for account in ACCOUNTS:
        present = [c for c in CONTACTS[account] if rng.random() < 0.8]
        for n, c in enumerate(present):
            email = rng.choice(EMAILS)
            phone = rng.choice(PHONES)
            contacts.append(
                (
                    c,
                    account,
                    email.format(c=c) if email else email,
                    phone.format(n=n + 30 * ACCOUNTS.index(account)) if phone else phone,
                    rng.random() < 0.7,
                    rng.random() < 0.7,
                    rng.random() < 0.5,
                )
            )
        for segment in SEGMENTS:
            if rng.random() < 0.15:
                continue  # removed from the definitions today
            catalogue.append((account, segment))
            members[(account, segment)] = [c for c in present if rng.random() < 0.5]
            if day > 0 and rng.random() < 0.2:
                quarantined[(account, segment)] = "bounds"
    return contacts, members, catalogue, quarantined


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_recipients_follow_the_changes_exactly(state: psycopg.Connection, seed: int) -> None:
    rng = random.Random(seed)
    frozen_seen = 0
    for day in range(8):
        contacts, members, catalogue, quarantined = a_day(rng, day)
        before = recipients(state)
        set_contacts(state, contacts)
        set_catalogue(state, catalogue)
        set_membership(state, members)
        publish(START + dt.timedelta(days=day), f"r{seed}-{day}", quarantined)

        now_staged = staged(state)
        frozen = {
            r
            for r in before
            if (r[0], r[1]) in quarantined
            and (r[0], r[1]) in catalogue
            and (r[0], r[2]) not in now_staged
        }
        assert recipients(state) == by_the_rule(state) | frozen, (seed, day)
        frozen_seen += len(frozen)
    # The walk exercised what it is meant to: recipients, and frozen quarantined ones.
    assert recipients(state)
    assert frozen_seen > 0
