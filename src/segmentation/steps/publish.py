"""The atomic publish of the audited candidate (segments_audit) to segments_serving.

Mechanism: the serving tables are ordinary tables created once by `segments db init`. A publish
changes their *rows* in ONE transaction: per published segment it deletes the members that
exited and inserts the ones that entered, upserts the catalogue row, and refreshes group
assignments and recipients the same way. Under MVCC every reader statement sees either the
complete previous commit or the complete new one. No DDL touches a serving table, so grants,
row-level security policies and views that depend on them can never be lost or left pointing
at an old object (the pitfalls of schema swaps, renames and dbt table rebuilds).

The transaction first copies the candidate into temporary tables and publishes from the
copies only. Given the audit's `audit_id` (the pipeline always passes it), it computes the
fingerprint of the copies (warehouse.control) and refuses when it differs from what that
audit recorded: a rebuild between audit and publish can never be published unaudited.

A quarantined segment keeps its last published membership and recipients (consent still
applies); its catalogue row is marked `stale` with the audit's reason. `accepted` (from
`segments accept`, steps.accept) names quarantined segments an operator released: they publish
the audited candidate like the rest, and the publish_log row (status 'accepted') records who
accepted them and why. Publishing the same
candidate twice for the same as-of date changes nothing but `segments.published_at` and adds
a `publish_log` row.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from segmentation import settings
from segmentation.errors import CandidateChangedError, PublishError, PublishRewindError
from segmentation.language.model import logic_hash
from segmentation.warehouse import control, database

log = logging.getLogger(__name__)

CANDIDATE_MEMBERSHIP = f"{settings.SCHEMA_AUDIT}.segment_memberships"
CANDIDATE_CATALOGUE = f"{settings.SCHEMA_AUDIT}.segment_catalogue"
CANDIDATE_GROUPS = f"{settings.SCHEMA_AUDIT}.segment_group_assignments"
CANDIDATE_AS_OF = f"{settings.SCHEMA_AUDIT}.int_segment_as_of"
STAGED_CONTACTS = f"{settings.SCHEMA_STAGING}.stg_crm__contacts"

# The candidate as the audit fingerprints it (control.fingerprint), live and as publish's copy.
CANDIDATE = {
    "membership": CANDIDATE_MEMBERSHIP,
    "catalogue": CANDIDATE_CATALOGUE,
    "groups": CANDIDATE_GROUPS,
    "contacts": STAGED_CONTACTS,
    "as_of": CANDIDATE_AS_OF,
}
COPIES = {
    "membership": "pub_cand_members",
    "catalogue": "pub_cand_catalogue",
    "groups": "pub_cand_groups",
    "contacts": "pub_cand_contacts",
    # Not published, so not copied: read once, in this transaction, for the fingerprint.
    "as_of": CANDIDATE_AS_OF,
}

DEFAULT_LOCK_TIMEOUT = str(settings.default("SEGMENTS_PUBLISH_LOCK_TIMEOUT"))
DEFAULT_STATEMENT_TIMEOUT = str(settings.default("SEGMENTS_PUBLISH_STATEMENT_TIMEOUT"))


@dataclass(frozen=True)
class PublishResult:
    published: int
    quarantined: int
    counts: dict[str, dict[str, int]]  # account -> segment -> members now in serving
    status: str  # 'published' | 'partial' (some segments quarantined)
    as_of: dt.date | None = None
    run_id: str = ""
    published_at: dt.datetime | None = None
    publish_id: int | None = None
    stale: dict[str, dict[str, str]] = field(default_factory=dict)  # account -> segment -> reason


def publish(
    as_of: dt.date,
    run_id: str,
    quarantined: dict[tuple[str, str], str],
    *,
    allow_rewind: bool = False,
    audit_id: int | None = None,
    lock_timeout: str | None = None,
    statement_timeout: str | None = None,
    definitions: Mapping[str, Mapping[str, Any]] | None = None,
    accepted: Mapping[tuple[str, str], tuple[str, str]] | None = None,
) -> PublishResult:
    """Publish the candidate in segments_audit to segments_serving in one transaction.

    `quarantined` maps (account_id, segment_key) to the audit's reason; those segments keep
    their last published membership and are marked stale. An as-of date older than the one
    serving already shows is refused unless `allow_rewind` (it would roll Broadcast back).
    With `audit_id` (segmentation.steps.pipeline always gives it) the candidate must be exactly the
    one that audit checked, with the same verdict, and no other run may hold the run lease;
    otherwise CandidateChangedError / RunLockedError and serving is unchanged. Without it the
    candidate is published as it stands (tests, and an operator's deliberate call).
    Timeouts default to env SEGMENTS_PUBLISH_LOCK_TIMEOUT / SEGMENTS_PUBLISH_STATEMENT_TIMEOUT.
    `definitions` (plan_definitions of the audited plan) are recorded, in the same
    transaction, in segments_history.published_definitions for each hash published.
    `accepted` maps quarantined segments (keys of `quarantined`, which stays the audit's
    verdict) to (accepted_by, reason): they publish, and must still be stale in serving.
    """
    published_at = dt.datetime.now(dt.UTC)
    accepted = dict(accepted or {})
    if set(accepted) - set(quarantined):
        raise PublishError(
            f"Cannot accept {sorted(set(accepted) - set(quarantined))} for {as_of}: the audit "
            "did not quarantine them. Serving is unchanged."
        )
    q_keys = sorted(k for k in quarantined if k not in accepted)
    params: dict[str, Any] = {
        "as_of": as_of,
        "run_id": run_id,
        "published_at": published_at,
        "q_acc": [k[0] for k in q_keys],
        "q_seg": [k[1] for k in q_keys],
        "q_reason": [quarantined[k] or "quarantined by the audit" for k in q_keys],
        "a_acc": [k[0] for k in sorted(accepted)],
        "a_seg": [k[1] for k in sorted(accepted)],
        "accepted_by": "; ".join(sorted({by for by, _ in accepted.values()})) or None,
        "accept_reason": "; ".join(sorted({why for _, why in accepted.values()})) or None,
    }
    lock_timeout = lock_timeout or settings.env("SEGMENTS_PUBLISH_LOCK_TIMEOUT")
    statement_timeout = statement_timeout or settings.env("SEGMENTS_PUBLISH_STATEMENT_TIMEOUT")
    try:
        with database.transaction() as conn:
            _begin(conn, lock_timeout, statement_timeout)
            _check_inputs(conn, as_of, allow_rewind)
            _snapshot(conn)
            if audit_id is not None:
                _verify(conn, audit_id, as_of, run_id, quarantined)
            if accepted:
                _check_accepted(conn, params)
            _prepare(conn, params)
            _write_members(conn, params)
            _write_segments(conn, params)
            _write_definitions(conn, params, definitions or {})
            _write_groups(conn, params)
            _write_recipients(conn, params)
            result = _write_log(conn, params)
    except pg_errors.LockNotAvailable as exc:
        raise PublishError(
            f"Publish for {as_of} gave up waiting for a lock (lock_timeout={lock_timeout}): "
            f"{exc}. Serving is unchanged; find the blocking session in pg_stat_activity "
            "and run the publish again."
        ) from exc
    except pg_errors.QueryCanceled as exc:
        raise PublishError(
            f"Publish for {as_of} was cancelled (statement_timeout={statement_timeout}): {exc}. "
            "Serving is unchanged."
        ) from exc
    except psycopg.Error as exc:
        raise PublishError(
            f"Publish for {as_of} failed and was rolled back; serving is unchanged: {exc}"
        ) from exc
    log.info(
        "published as_of=%s run_id=%s: %d segments published, %d quarantined (%s)",
        as_of,
        run_id,
        result.published,
        result.quarantined,
        result.status,
    )
    return result


def _run(
    conn: psycopg.Connection,
    query: str,
    params: dict[str, Any] | None = None,
    **relations: sql.Composable,
) -> psycopg.Cursor:
    return database.run_sql(conn, "publish.sql", query, params, **relations)


def last_published_counts() -> dict[tuple[str, str], int]:
    """(account_id, segment_key) -> member count last published (stale segments: the kept one).

    Segments that never published successfully are absent, so a first publish has no base.
    """
    with database.connect() as conn:
        rows = _run(conn, "last_published_counts").fetchall()
    return {(a, s): n for a, s, n in rows}


def last_published() -> dict[tuple[str, str], tuple[int, str]]:
    """(account_id, segment_key) -> (member count, definition_hash) last published; like
    last_published_counts, a segment that never published successfully is absent."""
    with database.connect() as conn:
        rows = _run(conn, "last_published").fetchall()
    return {(a, s): (n, h) for a, s, n, h in rows}


def _begin(conn: psycopg.Connection, lock_timeout: str, statement_timeout: str) -> None:
    conn.execute("select set_config('lock_timeout', %s, true)", (lock_timeout,))
    conn.execute("select set_config('statement_timeout', %s, true)", (statement_timeout,))
    control.lock_publish(conn)


def _relation_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()[0]


def _check_inputs(conn: psycopg.Connection, as_of: dt.date, allow_rewind: bool) -> None:
    missing = [
        name
        for name in (CANDIDATE_MEMBERSHIP, CANDIDATE_CATALOGUE, STAGED_CONTACTS)
        if not _relation_exists(conn, name)
    ]
    if missing:
        raise PublishError(
            f"Cannot publish {as_of}: {', '.join(missing)} does not exist. Build the project "
            "first (`segments run` builds, audits and publishes in order)."
        )
    latest = _run(conn, "latest_as_of").fetchone()[0]
    if latest is not None and as_of < latest and not allow_rewind:
        raise PublishRewindError(
            f"Serving already shows as-of {latest}; publishing the older date {as_of} would roll "
            "Broadcast back and break the membership history. The build and audit of that "
            "date are in segments_audit. To roll serving back on purpose, publish with "
            "allow_rewind=True."
        )


def _snapshot(conn: psycopg.Connection) -> None:
    """Copy the candidate (the pub_cand_* tables): everything after reads the copies."""
    groups = CANDIDATE_GROUPS if _relation_exists(conn, CANDIDATE_GROUPS) else None
    _run(
        conn,
        "snapshot",
        candidate_groups=control.relation_or_empty(conn, "groups", groups),
    )


def _verify(
    conn: psycopg.Connection,
    audit_id: int,
    as_of: dt.date,
    run_id: str,
    quarantined: dict[tuple[str, str], str],
) -> None:
    """Refuse unless the copied candidate is exactly what audit `audit_id` checked."""
    control.check_not_taken(conn, run_id)
    rerun = (
        f"Serving is unchanged. Rerun build and audit for {as_of} (`segments run --as-of "
        f"{as_of}`, or clear the DAG run from its build task)."
    )
    recorded = control.load_audit(conn, audit_id)
    if recorded is None:
        raise CandidateChangedError(
            f"Refusing to publish {as_of} for run {run_id}: audit {audit_id} is not recorded in "
            f"segments_control.audits (removed after {control.AUDIT_RETENTION.days} days, or "
            f"never run). {rerun}"
        )
    if (recorded.run_id, recorded.as_of) != (run_id, as_of):
        raise CandidateChangedError(
            f"Refusing to publish {as_of} for run {run_id}: audit {audit_id} checked run "
            f"{recorded.run_id} for as-of {recorded.as_of}. {rerun}"
        )
    if recorded.global_failures:
        raise CandidateChangedError(
            f"Refusing to publish {as_of} for run {run_id}: audit {audit_id} found "
            f"{recorded.global_failures} global failure(s). {rerun}"
        )
    if not control.same_quarantine(recorded.quarantined, quarantined):
        raise CandidateChangedError(
            f"Refusing to publish {as_of} for run {run_id}: the quarantined segments given "
            f"({sorted(quarantined)}) are not those audit {audit_id} decided "
            f"({[tuple(q[:2]) for q in recorded.quarantined]}). {rerun}"
        )
    changes = recorded.prints.differences(control.fingerprint(conn, COPIES))
    if changes:
        raise CandidateChangedError(
            f"Refusing to publish {as_of} for run {run_id}: the candidate is not the one audit "
            f"{audit_id} checked at {recorded.audited_at:%Y-%m-%d %H:%M:%S %Z}. It was rebuilt "
            "after the audit (another run, a backfill or a manual dbt build). What changed:\n  "
            + "\n  ".join(changes)
            + f"\n{rerun}"
        )


def _check_accepted(conn: psycopg.Connection, p: dict[str, Any]) -> None:
    """Under the publish lock: every accepted segment is still stale in serving, so two
    accepts of one quarantine publish it once."""
    released = _run(conn, "accepted_not_stale", p).fetchall()
    if released:
        names = ", ".join(f"{a}/{s}" for a, s in released)
        raise PublishError(
            f"Cannot accept {names}: serving no longer shows it quarantined (stale), so there "
            "is nothing to accept. Serving is unchanged."
        )


def _address_rules() -> dict[str, str]:
    rules = settings.address_rules()
    return {"e164_rule": rules["e164"], "email_rule": rules["email"]}


def _prepare(conn: psycopg.Connection, p: dict[str, Any]) -> None:
    """Session-private working sets (temporary, dropped at commit or rollback)."""
    _run(conn, "prepare", p)


def _write_members(conn: psycopg.Connection, p: dict[str, Any]) -> None:
    _run(conn, "write_members", p)


def _write_segments(conn: psycopg.Connection, p: dict[str, Any]) -> None:
    _run(conn, "write_segments", p)


def plan_definitions(plan: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """definition_hash -> {key, scope, logic, source_file} of a plan file's segments (those
    without the recorded logic, from an older plan file, are left out)."""
    found: dict[str, dict[str, Any]] = {}
    for seg in (plan or {}).get("segments", []):
        if seg.get("logic") is not None:
            found[seg["definition_hash"]] = {
                "key": seg["key"],
                "scope": seg["account"],
                "logic": seg["logic"],
                "source_file": seg.get("source_file"),
            }
    return found


def _write_definitions(
    conn: psycopg.Connection, p: dict[str, Any], definitions: Mapping[str, Mapping[str, Any]]
) -> None:
    rows = []
    for digest, d in sorted(definitions.items()):
        if logic_hash(dict(d["logic"])) != digest:
            # Never record a definition under a hash it does not have.
            log.warning(
                "not recording the definition of %s/%s: hash mismatch", d["scope"], d["key"]
            )
            continue
        rows.append((digest, d["key"], d["scope"], json.dumps(d["logic"]), d.get("source_file")))
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    names = ("d_hash", "d_key", "d_scope", "d_definition", "d_source")
    _run(
        conn,
        "write_definitions",
        {**p, **{n: list(c) for n, c in zip(names, columns, strict=True)}},
    )


def _write_groups(conn: psycopg.Connection, p: dict[str, Any]) -> None:
    _run(conn, "write_groups", p)


def _write_recipients(conn: psycopg.Connection, p: dict[str, Any]) -> None:
    # Staging already nulls invalid addresses; the address rules here are the contract's guard.
    recipients = database.statements(
        "recipients.sql",
        "recipients",
        members=sql.Identifier(settings.SCHEMA_SERVING, "segment_members"),
        contacts=sql.Identifier(COPIES["contacts"]),
    )[0]
    _run(conn, "write_recipients", {**p, **_address_rules()}, recipients=recipients)


def _write_log(conn: psycopg.Connection, p: dict[str, Any]) -> PublishResult:
    published, quarantined = _run(conn, "counts").fetchone()
    status = "accepted" if p["a_acc"] else "partial" if quarantined else "published"
    publish_id = _run(
        conn,
        "write_log",
        {**p, "published": published, "quarantined": quarantined, "status": status},
    ).fetchone()[0]
    counts: dict[str, dict[str, int]] = {}
    stale: dict[str, dict[str, str]] = {}
    rows = _run(conn, "serving_segments").fetchall()
    for account, segment, members, is_stale, reason in rows:
        counts.setdefault(account, {})[segment] = members
        if is_stale:
            stale.setdefault(account, {})[segment] = reason
    return PublishResult(
        published=published,
        quarantined=quarantined,
        counts=counts,
        status=status,
        as_of=p["as_of"],
        run_id=p["run_id"],
        published_at=p["published_at"],
        publish_id=publish_id,
        stale=stale,
    )
