"""The recipient rule (warehouse/sql/recipients.sql) as SQL over given relations: the audit
checks and publish writes the same rows."""

from __future__ import annotations

from psycopg import sql

from segmentation import settings
from segmentation.warehouse import database

SQL = "recipients.sql"


def rule_params() -> dict[str, str]:
    """The address rules the queries bind (%(e164_rule)s, %(email_rule)s)."""
    rules = settings.address_rules()
    return {"e164_rule": rules["e164"], "email_rule": rules["email"]}


def channels(contacts: sql.Composable) -> sql.Composed:
    """(account_id, contact_id, channel, address, consent, address_valid) of `contacts`."""
    return database.statements(SQL, "channels", contacts=contacts)[0]


def recipients(members: sql.Composable, contacts: sql.Composable) -> sql.Composed:
    """(account_id, segment_key, contact_id, channel, address, consent, address_valid): each
    member of `members` joined to its channels in `contacts`."""
    return database.statements(SQL, "recipients", members=members, channels=channels(contacts))[0]
