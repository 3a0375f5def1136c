"""The pipeline's control tables (schema segments_control): run lease, audit fingerprints and
the publish lock. DDL: sql/control.sql; the fingerprint query: sql/fingerprint.sql.

- **Publish lock.** publish and record_history take `LOCK TABLE segments_control.publish_lock
  IN EXCLUSIVE MODE` in their transaction. The reader has no USAGE on the schema, so unlike
  an advisory lock (which any role may take) it cannot block a publish.
- **Audit fingerprint.** The audit records, per segment, the member count and a content hash
  of exactly the candidate it checked (also the catalogue rows, group assignments, staged
  contacts and the candidate's as-of date). publish copies the candidate, computes the same
  fingerprint over its copy inside its transaction and refuses on any difference, so what is
  published is what was audited.
- **Run lease.** One lease on the candidate (segments_staging and segments_audit are shared
  by every as-of date): build, audit, publish and history of a run hold it, so two runs
  never interleave. DAG tasks are separate processes, hence a row rather than a session
  lock; see `hold` for re-entry and stale-lease takeover.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import socket
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from segmentation import settings
from segmentation.errors import RunLockedError
from segmentation.warehouse import database, security

log = logging.getLogger(__name__)

SCHEMA = settings.SCHEMA_CONTROL
LEASE_TABLES = ("run_lease",)
AUDIT_TABLES = ("audits", "audit_fingerprints")
LOCK_TABLE = "publish_lock"

# How long a lease outlives the last step that held it, so the next DAG task of the same run
# (after a retry delay, say) finds it still held. A step's own lease never expires while its
# process lives: its keep-alive session proves it.
DEFAULT_LEASE_TTL_SECONDS = int(str(settings.default("SEGMENTS_LEASE_TTL_SECONDS")))
# Audits older than this are deleted when a new one is recorded.
AUDIT_RETENTION = dt.timedelta(days=30)
_APP_PREFIX = "segments-lease "


def apply(conn: psycopg.Connection) -> None:
    """Create the control tables and give only the pipeline role access (idempotent)."""
    # Like the other DDL scripts: skipped when everything is in place, so init takes no lock
    # that could wait for a running audit or publish.
    database.read_sql_if_missing(conn, "control.sql")
    database.run_sql(conn, "run_lease.sql", "ensure_row")
    schema = sql.Identifier(SCHEMA)
    reader, pipeline = (
        sql.Identifier(security.reader_role()),
        sql.Identifier(security.pipeline_role()),
    )
    for role in (sql.SQL("public"), reader):
        conn.execute(sql.SQL("revoke all on all tables in schema {} from {}").format(schema, role))
        conn.execute(sql.SQL("revoke all on schema {} from {}").format(schema, role))
    conn.execute(sql.SQL("grant usage on schema {} to {}").format(schema, pipeline))
    grants = {
        "run_lease": "select, update",
        "audits": "select, insert, delete",
        "audit_fingerprints": "select, insert, delete",
        # LOCK TABLE in exclusive mode needs UPDATE; the table never holds a row.
        LOCK_TABLE: "select, update",
    }
    for table, privileges in grants.items():
        conn.execute(
            sql.SQL("grant " + privileges + " on {} to {}").format(
                sql.Identifier(SCHEMA, table), pipeline
            )
        )


def lock_publish(conn: psycopg.Connection) -> None:
    """Serialise publish and history (transaction-scoped, released at commit or rollback)."""
    conn.execute(
        sql.SQL("lock table {} in exclusive mode").format(sql.Identifier(SCHEMA, LOCK_TABLE))
    )


# --- fingerprints ---------------------------------------------------------------------------

# The parts of a fingerprint and the relation each is computed from.
RELATIONS = ("membership", "catalogue", "groups", "contacts", "as_of")
_EMPTY = {
    "membership": "select null::text as account_id, null::text as segment_key, "
    "null::text as contact_id",
    "catalogue": "select null::text as account_id, null::text as segment_key, "
    "null::text as name, null::text as description, null::text as owner, "
    "null::text as visibility, null::text[] as tags, null::boolean as enabled, "
    "null::text as definition_hash, null::integer as expect_min_members, "
    "null::integer as expect_max_members, null::numeric as expect_max_change_pct",
    "groups": "select null::text as account_id, null::text as group_key, "
    "null::text as contact_id, null::text as segment_key",
    "contacts": "select null::text as account_id, null::text as contact_id, "
    "null::text as email, null::text as phone, null::boolean as consent_whatsapp, "
    "null::boolean as consent_email, null::boolean as consent_sms",
    "as_of": "select null::text as account_id, null::date as as_of_date",
}

Key = tuple[str, "str | None", "str | None"]  # (part, account_id, item_key)


@dataclass(frozen=True)
class Fingerprint:
    """(part, account_id, item_key) -> (row_count, content_hash)."""

    parts: Mapping[Key, tuple[int, str | None]]

    def as_of_dates(self) -> set[str]:
        """The as-of dates the candidate was built for (empty without int_segment_as_of)."""
        dates: set[str] = set()
        for (part, _, _), (_, value) in self.parts.items():
            if part == "as_of" and value:
                dates.update(value.split(","))
        return dates

    def for_account(self, account_id: str) -> Fingerprint:
        """Only the parts of one account (what that account's publish verifies)."""
        return Fingerprint({k: v for k, v in self.parts.items() if k[1] == account_id})

    def differences(self, other: Fingerprint, limit: int = 10) -> list[str]:
        """What changed from `self` (audited) to `other` (found now), one line per key."""
        lines = []
        for key in sorted(set(self.parts) | set(other.parts), key=_sort_key):
            before, after = self.parts.get(key), other.parts.get(key)
            if before == after:
                continue
            lines.append(_describe(key, before, after))
        if len(lines) > limit:
            lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
        return lines


def _sort_key(key: Key) -> tuple[str, str, str]:
    return (key[0], key[1] or "", key[2] or "")


_PART_NAMES = {
    "segment": "members",
    "catalogue": "catalogue row",
    "group": "group assignments",
    "contacts": "staged contacts",
    "as_of": "as-of date",
}


def _describe(key: Key, before: tuple[int, str | None] | None, after: Any) -> str:
    part, account, item = key
    where = f"{account}/{item}" if item is not None else f"{account}"
    what = _PART_NAMES.get(part, part)
    if before is None:
        return f"{where}: {what}: not in the audited candidate, now {after[0]} row(s)"
    if after is None:
        return f"{where}: {what}: {before[0]} row(s) audited, now absent"
    if part == "as_of":
        return f"{where}: {what}: audited {before[1]}, now {after[1]}"
    count = f"{before[0]} -> {after[0]} row(s)" if before[0] != after[0] else f"{after[0]} row(s)"
    return f"{where}: {what}: {count}, content hash {_short(before[1])} -> {_short(after[1])}"


def _short(digest: str | None) -> str:
    return (digest or "none")[:12]


def relation_or_empty(conn: psycopg.Connection, kind: str, name: str | None) -> sql.Composable:
    """`name` as an identifier when it exists, else an empty relation with the same columns."""
    if name and conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()[0]:
        return sql.Identifier(*name.split("."))
    return sql.SQL("(" + _EMPTY[kind] + " where false)")


def fingerprint(conn: psycopg.Connection, relations: Mapping[str, str | None]) -> Fingerprint:
    """The fingerprint of the candidate in `relations` (kind -> relation; None: absent)."""
    query = sql.SQL(database.read_sql("fingerprint.sql")).format(
        **{f"{kind}_rel": relation_or_empty(conn, kind, relations.get(kind)) for kind in RELATIONS}
    )
    rows = conn.execute(query).fetchall()
    return Fingerprint({(p, a, k): (int(n), h) for p, a, k, n, h in rows})


def record_audit(
    conn: psycopg.Connection,
    run_id: str,
    as_of: dt.date,
    prints: Fingerprint,
    global_failures: int,
    quarantined: Mapping[tuple[str, str], str],
    failed_accounts: Mapping[str, str] | None = None,
) -> int:
    """Persist an audit and the fingerprint of what it checked; returns its audit_id.
    `global_failures` counts the failures no single account owns; `failed_accounts` (account
    -> cause) are the accounts whose own rows failed a global check."""
    database.run_sql(conn, "audit_records.sql", "delete_old", {"retention": AUDIT_RETENTION})
    audit_id = database.run_sql(
        conn,
        "audit_records.sql",
        "insert_audit",
        {
            "run_id": run_id,
            "as_of": as_of,
            "global_failures": global_failures,
            "quarantined": json.dumps(_quarantine_list(quarantined)),
            "failed_accounts": json.dumps(dict(sorted((failed_accounts or {}).items()))),
        },
    ).fetchone()[0]
    with conn.cursor() as cur:
        cur.executemany(
            database.statements("audit_records.sql", "insert_fingerprint")[0],
            [
                {
                    "audit_id": audit_id,
                    "part": part,
                    "account_id": account,
                    "item_key": item,
                    "row_count": count,
                    "content_hash": digest,
                }
                for (part, account, item), (count, digest) in prints.parts.items()
            ],
        )
    return audit_id


@dataclass(frozen=True)
class RecordedAudit:
    audit_id: int
    run_id: str
    as_of: dt.date
    audited_at: dt.datetime
    global_failures: int
    quarantined: list[list[str]]
    prints: Fingerprint
    failed_accounts: Mapping[str, str] = field(default_factory=dict)


def load_audit(conn: psycopg.Connection, audit_id: int) -> RecordedAudit | None:
    row = database.run_sql(conn, "audit_records.sql", "audit", {"audit_id": audit_id}).fetchone()
    if row is None:
        return None
    parts = database.run_sql(
        conn, "audit_records.sql", "fingerprint", {"audit_id": audit_id}
    ).fetchall()
    return RecordedAudit(
        audit_id,
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        Fingerprint({(p, a, k): (int(n), h) for p, a, k, n, h in parts}),
        dict(row[5] or {}),
    )


def latest_audit(conn: psycopg.Connection) -> RecordedAudit | None:
    """The most recent recorded audit (None when none is recorded)."""
    audit_id = database.run_sql(conn, "audit_records.sql", "latest").fetchone()[0]
    return None if audit_id is None else load_audit(conn, audit_id)


def _quarantine_list(quarantined: Mapping[tuple[str, str], str]) -> list[list[str]]:
    return [[a, s, r] for (a, s), r in sorted(quarantined.items())]


def same_quarantine(
    recorded: Iterable[Iterable[str]], given: Mapping[tuple[str, str], str]
) -> bool:
    return [list(r) for r in recorded] == _quarantine_list(given)


# --- the run lease --------------------------------------------------------------------------


def lease_ttl() -> dt.timedelta:
    seconds = int(settings.env("SEGMENTS_LEASE_TTL_SECONDS") or DEFAULT_LEASE_TTL_SECONDS)
    return dt.timedelta(seconds=seconds)


@dataclass(frozen=True)
class Lease:
    run_id: str | None
    as_of: dt.date | None
    acquired_at: dt.datetime | None
    expires_at: dt.datetime | None
    holder: str | None
    attached: bool  # a step recorded its keep-alive session
    step_alive: bool  # ... and that session is still connected: the step is running
    expired: bool

    @property
    def stale(self) -> bool:
        """Free to take over: its step's process died, or no step for the lease's TTL."""
        if self.attached:
            return not self.step_alive
        return self.expired

    def describe(self) -> str:
        state = (
            f"a step is running now (on {self.holder})"
            if self.step_alive
            else f"between steps, last on {self.holder}; the lease expires at "
            f"{self.expires_at:%Y-%m-%d %H:%M:%S %Z}"
        )
        return (
            f"run {self.run_id} (as-of {self.as_of}) holds it since "
            f"{self.acquired_at:%Y-%m-%d %H:%M:%S %Z}; {state}"
        )


def current_lease(conn: psycopg.Connection, *, for_update: bool = False) -> Lease:
    lock = sql.SQL("for update of l" if for_update else "")
    row = database.run_sql(
        conn, "run_lease.sql", "current", {"prefix": _APP_PREFIX}, lock=lock
    ).fetchone()
    if row is None:
        raise RunLockedError(
            "segments_control.run_lease has no row: run `segments db init` (it creates it)."
        )
    return Lease(*row)


def _holder() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


# Runs whose lease this process holds right now (nested holds are re-entrant no-ops).
_held: dict[str, int] = {}


@contextmanager
def hold(as_of: dt.date, run_id: str, *, keep: bool = True) -> Iterator[None]:
    """Hold the candidate lease for one step of run `run_id`.

    Re-entrant: the same run id (an Airflow retry, the next task, a nested step) takes it
    again. Another run's lease is taken over only when it is stale: expired (no step for
    SEGMENTS_LEASE_TTL_SECONDS) or its step's process is gone (its keep-alive session
    disappeared). Otherwise RunLockedError says who holds it.

    On success the lease stays with the run for the next step (`keep`) until `release` or
    expiry; when the step raises, or `keep` is false, it is released.
    """
    if run_id in _held:
        _held[run_id] += 1
        try:
            yield
        finally:
            _held[run_id] -= 1
        return
    token = secrets.token_hex(8)
    keeper = database.connect(autocommit=True)
    try:
        keeper.execute("select set_config('application_name', %s, false)", (_APP_PREFIX + token,))
        _acquire(keeper, as_of, run_id, token)
        _held[run_id] = 1
        try:
            yield
        except BaseException:
            _release(keeper, run_id)
            raise
        else:
            if keep:
                _detach(keeper, run_id, token)
            else:
                _release(keeper, run_id)
        finally:
            _held.pop(run_id, None)
    finally:
        keeper.close()


def _acquire(conn: psycopg.Connection, as_of: dt.date, run_id: str, token: str) -> None:
    with conn.transaction():
        lease = current_lease(conn, for_update=True)
        mine = lease.run_id == run_id
        if mine and lease.as_of != as_of:
            raise RunLockedError(
                f"Run {run_id} already holds the candidate lease for as-of {lease.as_of}, not "
                f"{as_of}: one run builds, audits and publishes one date. Use a new run id."
            )
        if lease.run_id is not None and not mine:
            if not lease.stale:
                raise RunLockedError(
                    f"Another pipeline run is using the candidate: {lease.describe()}. Build, "
                    f"audit and publish of two runs must not interleave, so run {run_id} for "
                    f"{as_of} did not start this step and serving is unchanged. Wait for that "
                    "run to finish and start this one again (an Airflow task retries by itself)."
                    " If that run is dead, its lease is taken over automatically once it "
                    "expires; see docs/operations.md, 'Concurrent runs', to release it sooner."
                )
            log.warning(
                "taking over the stale candidate lease of %s (%s) for run %s",
                lease.run_id,
                "expired" if lease.expired else "its step's process is gone",
                run_id,
            )
        database.run_sql(
            conn,
            "run_lease.sql",
            "acquire",
            {
                "run_id": run_id,
                "as_of": as_of,
                "mine": mine,
                "ttl": lease_ttl(),
                "holder": _holder(),
                "token": token,
            },
        )
    log.info("run %s holds the candidate lease (as-of %s)", run_id, as_of)


def _detach(conn: psycopg.Connection, run_id: str, token: str) -> None:
    database.run_sql(
        conn,
        "run_lease.sql",
        "detach",
        {"run_id": run_id, "token": token, "ttl": lease_ttl()},
    )


def _release(conn: psycopg.Connection, run_id: str) -> bool:
    row = database.run_sql(conn, "run_lease.sql", "release", {"run_id": run_id}).fetchone()
    if row:
        log.info("run %s released the candidate lease", run_id)
    return row is not None


def release(run_id: str) -> bool:
    """Release the lease if `run_id` holds it (end of a run, success or failure)."""
    with database.connect(autocommit=True) as conn:
        return _release(conn, run_id)


def check_not_taken(conn: psycopg.Connection, run_id: str) -> None:
    """Inside publish's transaction: refuse when another run holds the lease now."""
    row = database.run_sql(conn, "run_lease.sql", "holder_for_share").fetchone()
    if row and row[0] is not None and row[0] != run_id:
        lease = current_lease(conn)
        raise RunLockedError(
            f"Refusing to publish run {run_id}: another run now holds the candidate lease "
            f"({lease.describe()}), so segments_audit may hold its build. Serving is "
            "unchanged; rerun build and audit once it has finished."
        )
