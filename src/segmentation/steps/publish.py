"""The atomic publish of the audited candidate (segments_audit) to segments_serving, one
transaction per account.

Mechanism: the serving tables are ordinary tables created once by `segments db init`. A publish
changes their *rows*, each account in ONE transaction of its own (`publish_account`; every
statement names the account, so it never touches another account's rows): per published
segment it deletes the members that exited and inserts the ones that entered, upserts the
catalogue row, and refreshes group assignments and recipients the same way. Under MVCC every
reader statement sees, per account, either the complete previous commit or the complete new
one. No DDL touches a serving table, so grants, row-level security policies and views that
depend on them can never be lost or left pointing at an old object (the pitfalls of schema
swaps, renames and dbt table rebuilds).

`publish` publishes the run's accounts in turn. A failure in one account rolls back that
account only; it is recorded in `PublishResult.failed` (account -> cause), the account keeps
its last publish with its segments marked stale, and the other accounts still publish.

Each account's transaction first copies that account's candidate into temporary tables and
publishes from the copies only. Given the audit's `audit_id` (the pipeline always passes it),
it computes the fingerprint of the copies (warehouse.control) and refuses when it differs from
what that audit recorded for the account: a rebuild between audit and publish can never be
published unaudited. Before any account is written, `publish` also checks the live candidate
against the audit: a rebuild is another run's doing, not one account's, so then nothing is
published.

A quarantined segment keeps its last published membership and recipients (consent still
applies); its catalogue row is marked `stale` with the audit's reason. `accepted` (from
`segments accept`, steps.accept) names quarantined segments an operator released: they publish
the audited candidate like the rest, and the publish_log row (status 'accepted') records who
accepted them and why. Publishing the same
candidate twice for the same as-of date changes nothing but `segments.published_at` and adds
a `publish_log` row per account. Publishing an older date (allow_rewind) rewrites the
account's history from that date on in the same transaction (steps.history.rewind).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from segmentation import settings
from segmentation.errors import (
    CandidateChangedError,
    HistoryError,
    PublishError,
    PublishRewindError,
)
from segmentation.language.model import logic_hash
from segmentation.steps import history as history_step
from segmentation.warehouse import control, database
from segmentation.warehouse import recipients as recipient_rule

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
    # Not published; copied (the account's row) only to be fingerprinted.
    "as_of": "pub_cand_as_of",
}

DEFAULT_LOCK_TIMEOUT = str(settings.default("SEGMENTS_PUBLISH_LOCK_TIMEOUT"))
DEFAULT_STATEMENT_TIMEOUT = str(settings.default("SEGMENTS_PUBLISH_STATEMENT_TIMEOUT"))


@dataclass(frozen=True)
class PublishResult:
    published: int
    quarantined: int
    counts: dict[str, dict[str, int]]  # account -> segment -> members now in serving
    status: str  # 'published' | 'partial' (some segments quarantined) | 'accepted'
    as_of: dt.date | None = None
    run_id: str = ""
    published_at: dt.datetime | None = None
    publish_id: int | None = None  # the last publish_log row written
    stale: dict[str, dict[str, str]] = field(default_factory=dict)  # account -> segment -> reason
    # account -> one-line cause: the accounts not published (they keep their last publish,
    # their segments are marked stale with the cause). JSON-safe.
    failed: dict[str, str] = field(default_factory=dict)
    publish_ids: dict[str, int] = field(default_factory=dict)  # account -> publish_log row

    @property
    def accounts(self) -> list[str]:
        """The accounts this publish published."""
        return sorted(self.publish_ids)


def publish(
    as_of: dt.date,
    run_id: str,
    quarantined: Mapping[tuple[str, str], str],
    *,
    allow_rewind: bool = False,
    audit_id: int | None = None,
    lock_timeout: str | None = None,
    statement_timeout: str | None = None,
    definitions: Mapping[str, Mapping[str, Any]] | None = None,
    accounts: Sequence[str] | None = None,
    failed: Mapping[str, str] | None = None,
) -> PublishResult:
    """Publish the candidate in segments_audit to segments_serving, one transaction per
    account (publish_account), so accounts publish independently.

    The accounts are those the candidate was built for (int_segment_as_of and its catalogue),
    limited to `accounts` when given, less the `failed` ones (account -> cause, from earlier
    steps). Before anything is written, an as-of date older than the one serving shows for
    any of them is refused (PublishRewindError) unless `allow_rewind`.

    A failure in one account's publish (PublishError, CandidateChangedError, a database
    error) rolls back that account only: it is recorded in `PublishResult.failed` and the
    other accounts still publish. Every failed account (given or new) keeps its last publish
    and its segments are marked stale with the cause, each in its own transaction. When every
    account tried failed, nothing changed and the first error is raised as it was.

    `quarantined` maps (account_id, segment_key) to the audit's reason. `audit_id`,
    timeouts and `definitions` are as for publish_account.
    """
    failed_before = dict(failed or {})
    if audit_id is not None:
        # The audit's own verdict on accounts: never published, whoever calls.
        for account, cause in _preflight(as_of, run_id, audit_id, quarantined).items():
            failed_before.setdefault(account, f"audit: {cause}")
    scope = _accounts(as_of, accounts, failed_before, allow_rewind)
    published_at = dt.datetime.now(dt.UTC)
    results: dict[str, PublishResult] = {}
    new_failures: dict[str, str] = {}
    first_error: Exception | None = None
    for account in scope:
        try:
            results[account] = publish_account(
                as_of,
                run_id,
                account,
                quarantined,
                allow_rewind=allow_rewind,
                audit_id=audit_id,
                definitions=definitions,
                lock_timeout=lock_timeout,
                statement_timeout=statement_timeout,
                published_at=published_at,
            )
        except (PublishError, HistoryError) as exc:
            log.error("publish of account %s for %s failed: %s", account, as_of, exc)
            new_failures[account] = _one_line(exc)
            first_error = first_error or exc
    if scope and not results and first_error is not None:
        raise first_error
    all_failed = {**failed_before, **new_failures}
    for account, cause in sorted(all_failed.items()):
        mark_failed(as_of, run_id, account, cause, published_at=published_at)
    result = _combine(as_of, run_id, published_at, results, all_failed)
    log.info(
        "published as_of=%s run_id=%s: %d segments published, %d quarantined over %d "
        "account(s) (%s)%s",
        as_of,
        run_id,
        result.published,
        result.quarantined,
        len(results),
        result.status,
        f"; failed: {', '.join(sorted(all_failed))}" if all_failed else "",
    )
    return result


def _one_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n", 1)[0]


def _preflight(
    as_of: dt.date, run_id: str, audit_id: int, quarantined: Mapping[tuple[str, str], str]
) -> dict[str, str]:
    """Before any account is written: the live candidate must still be the one audit
    `audit_id` checked, for the run and date and verdict given. A difference means another
    build interleaved with this run, which no single account owns, so nothing is published
    (CandidateChangedError). Each account's transaction then verifies its own copy again (the
    check that binds). Returns the accounts the audit failed (account -> cause)."""
    with database.connect() as conn:
        _check_inputs(conn, as_of)
        recorded = _recorded_audit(conn, audit_id, as_of, run_id, None, quarantined)
        changes = recorded.prints.differences(control.fingerprint(conn, CANDIDATE))
    if changes:
        raise CandidateChangedError(
            f"Refusing to publish {as_of} for run {run_id}: the candidate is not the one audit "
            f"{audit_id} checked at {recorded.audited_at:%Y-%m-%d %H:%M:%S %Z}. It was rebuilt "
            "after the audit (another run, a backfill or a manual dbt build). What changed:\n  "
            + "\n  ".join(changes)
            + f"\nServing is unchanged. Rerun build and audit for {as_of} (`segments run "
            f"--as-of {as_of}`, or clear the DAG run from its build task)."
        )
    return dict(recorded.failed_accounts)


def _accounts(
    as_of: dt.date,
    accounts: Sequence[str] | None,
    failed: Mapping[str, str],
    allow_rewind: bool,
) -> list[str]:
    """The accounts to publish; refuses (before anything is written) a rewind not allowed."""
    with database.connect() as conn:
        _check_inputs(conn, as_of)
        as_of_rel = control.relation_or_empty(conn, "as_of", CANDIDATE_AS_OF)
        found = [r[0] for r in _run(conn, "candidate_accounts", as_of_rel=as_of_rel)]
        wanted = found if accounts is None else [a for a in found if a in set(accounts)]
        scope = [a for a in wanted if a not in failed]
        if not allow_rewind:
            behind = {}
            for account in scope:
                latest = _latest_as_of(conn, account)
                if latest is not None and as_of < latest:
                    behind[account] = latest
            if behind:
                raise PublishRewindError(_rewind_message(as_of, behind))
    return scope


def _latest_as_of(conn: psycopg.Connection, account_id: str) -> dt.date | None:
    row = _run(conn, "latest_as_of", {"account_id": account_id}).fetchone()
    return row[0] if row else None


def _rewind_message(as_of: dt.date, behind: Mapping[str, dt.date]) -> str:
    shown = ", ".join(f"{a} already shows as-of {d}" for a, d in sorted(behind.items()))
    return (
        f"Serving: {shown}; publishing the older date {as_of} would roll Broadcast back and "
        "break the membership history. Nothing was published. The build and audit of that "
        "date are in segments_audit. To roll serving back on purpose, publish with "
        "allow_rewind=True (`segments run --as-of ... --allow-rewind`): that also rewrites "
        "the account's history from that date on."
    )


def _combine(
    as_of: dt.date,
    run_id: str,
    published_at: dt.datetime,
    results: Mapping[str, PublishResult],
    failed: Mapping[str, str],
) -> PublishResult:
    quarantined = sum(r.quarantined for r in results.values())
    return PublishResult(
        published=sum(r.published for r in results.values()),
        quarantined=quarantined,
        counts={a: c for r in results.values() for a, c in r.counts.items()},
        status="partial" if quarantined else "published",
        as_of=as_of,
        run_id=run_id,
        published_at=published_at,
        publish_id=max((r.publish_id for r in results.values() if r.publish_id), default=None),
        stale={a: st for r in results.values() for a, st in r.stale.items()},
        failed=dict(sorted(failed.items())),
        publish_ids={a: r.publish_id for a, r in results.items() if r.publish_id is not None},
    )


def publish_account(
    as_of: dt.date,
    run_id: str,
    account_id: str,
    quarantined: Mapping[tuple[str, str], str],
    *,
    allow_rewind: bool = False,
    audit_id: int | None = None,
    definitions: Mapping[str, Mapping[str, Any]] | None = None,
    accepted: Mapping[str, tuple[str, str]] | None = None,
    lock_timeout: str | None = None,
    statement_timeout: str | None = None,
    published_at: dt.datetime | None = None,
) -> PublishResult:
    """Publish one account's candidate in ONE transaction; every statement touches only that
    account's rows, so a failure here leaves every other account as it was.

    `quarantined` maps (account_id, segment_key) to the audit's reason (other accounts'
    entries are ignored); those segments keep their last published membership and are
    marked stale. `accepted` (segment_key -> (by, reason), `segments accept`) releases those
    segments from the quarantine: they publish their audited candidate and the publish_log
    row says 'accepted', by whom and why. An as-of date older than the one serving shows for
    the account is refused unless `allow_rewind`; a rewind rewrites the account's history
    from that date on in this same transaction (steps.history.rewind).
    With `audit_id` (segmentation.steps.pipeline always gives it) the account's candidate must
    be exactly the one that audit checked, with the same verdict, the audit must not have
    failed the account, and no other run may hold the run lease; otherwise
    CandidateChangedError / RunLockedError and serving is unchanged. Without it the candidate
    is published as it stands (tests, and an operator's deliberate call).
    Timeouts default to env SEGMENTS_PUBLISH_LOCK_TIMEOUT / SEGMENTS_PUBLISH_STATEMENT_TIMEOUT.
    `definitions` (plan_definitions of the audited plan) are recorded, in the same
    transaction, in segments_history.published_definitions for each hash published.
    `accepted` maps quarantined segments (keys of `quarantined`, which stays the audit's
    verdict) to (accepted_by, reason): they publish, and must still be stale in serving.
    """
    published_at = published_at or dt.datetime.now(dt.UTC)
    accepted = dict(accepted or {})
    mine = {k: r for k, r in quarantined.items() if k[0] == account_id}
    held = {k: r for k, r in sorted(mine.items()) if k[1] not in accepted}
    if set(accepted) - {k[1] for k in mine}:
        raise PublishError(
            f"Cannot accept {sorted(set(accepted) - {k[1] for k in mine})} of {account_id} for "
            f"{as_of}: the audit did not quarantine them. Serving is unchanged."
        )
    params: dict[str, Any] = {
        "as_of": as_of,
        "run_id": run_id,
        "account_id": account_id,
        "published_at": published_at,
        "q_acc": [k[0] for k in held],
        "q_seg": [k[1] for k in held],
        "q_reason": [r or "quarantined by the audit" for r in held.values()],
        "accepted_by": "; ".join(by for by, _ in accepted.values()) or None,
        "accept_reason": "; ".join(why for _, why in accepted.values()) or None,
        "a_acc": [account_id for _ in sorted(accepted)],
        "a_seg": sorted(accepted),
    }
    lock_timeout = lock_timeout or settings.env("SEGMENTS_PUBLISH_LOCK_TIMEOUT")
    statement_timeout = statement_timeout or settings.env("SEGMENTS_PUBLISH_STATEMENT_TIMEOUT")
    where = f"Publish of account {account_id} for {as_of}"
    try:
        with database.transaction() as conn:
            _begin(conn, lock_timeout, statement_timeout)
            _check_inputs(conn, as_of)
            latest = _latest_as_of(conn, account_id)
            if latest is not None and as_of < latest and not allow_rewind:
                raise PublishRewindError(_rewind_message(as_of, {account_id: latest}))
            _snapshot(conn, account_id)
            if audit_id is not None:
                _verify(conn, audit_id, as_of, run_id, account_id, mine)
            if accepted:
                _check_accepted(conn, params)
            _prepare(conn, params)
            _write_members(conn, params)
            # Every member_since is at most the date serving shows (each publish leaves it
            # so): only an older date can find one to move back.
            if latest is None or as_of < latest:
                _run(conn, "rewind_member_since", params)
            history_step.rewind(conn, account_id, as_of)
            _write_segments(conn, params)
            _write_definitions(conn, params, definitions or {})
            _write_groups(conn, params)
            _write_recipients(conn, params)
            result = _write_log(conn, params, accepted=bool(accepted))
    except pg_errors.LockNotAvailable as exc:
        raise PublishError(
            f"{where} gave up waiting for a lock (lock_timeout={lock_timeout}): "
            f"{exc}. Serving is unchanged; find the blocking session in pg_stat_activity "
            "and run the publish again."
        ) from exc
    except pg_errors.QueryCanceled as exc:
        raise PublishError(
            f"{where} was cancelled (statement_timeout={statement_timeout}): {exc}. "
            "Serving is unchanged."
        ) from exc
    except psycopg.Error as exc:
        raise PublishError(
            f"{where} failed and was rolled back; serving is unchanged: {exc}"
        ) from exc
    log.info(
        "published %s as_of=%s run_id=%s: %d segments published, %d quarantined (%s)",
        account_id,
        as_of,
        run_id,
        result.published,
        result.quarantined,
        result.status,
    )
    return result


def mark_failed(
    as_of: dt.date,
    run_id: str,
    account_id: str,
    cause: str,
    *,
    published_at: dt.datetime | None = None,
) -> None:
    """An account not published this run keeps its last publish: in its own transaction,
    flag its serving segments stale with `cause` and log a 'failed' publish_log row. A
    failure here is logged, not raised: the run already fails for that account."""
    params = {
        "as_of": as_of,
        "run_id": run_id,
        "account_id": account_id,
        "published_at": published_at or dt.datetime.now(dt.UTC),
        "reason": f"not refreshed for {as_of}: {cause}"[:1000],
    }
    try:
        with database.transaction() as conn:
            conn.execute(
                "select set_config('lock_timeout', %s, true)",
                (settings.env("SEGMENTS_PUBLISH_LOCK_TIMEOUT"),),
            )
            control.lock_publish(conn)
            _run(conn, "mark_failed", params)
    except psycopg.Error as exc:
        log.error("could not mark account %s stale after its failure: %s", account_id, exc)


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


def _check_inputs(conn: psycopg.Connection, as_of: dt.date) -> None:
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


def _snapshot(conn: psycopg.Connection, account_id: str) -> None:
    """Copy the account's candidate (the pub_cand_* tables): everything after reads the
    copies."""
    groups = CANDIDATE_GROUPS if _relation_exists(conn, CANDIDATE_GROUPS) else None
    _run(
        conn,
        "snapshot",
        {"account_id": account_id},
        candidate_groups=control.relation_or_empty(conn, "groups", groups),
        candidate_as_of=control.relation_or_empty(conn, "as_of", CANDIDATE_AS_OF),
    )


def _recorded_audit(
    conn: psycopg.Connection,
    audit_id: int,
    as_of: dt.date,
    run_id: str,
    account_id: str | None,
    quarantined: Mapping[tuple[str, str], str],
) -> control.RecordedAudit:
    """Audit `audit_id` as recorded; refuse unless it checked this run and date, found no
    failure that blocks every account, and decided the quarantine given (of `account_id`, or
    of every account when None)."""
    control.check_not_taken(conn, run_id)
    target = f"account {account_id} for {as_of}" if account_id else f"{as_of}"
    rerun = (
        f"Serving{' of ' + account_id if account_id else ''} is unchanged. Rerun build and "
        f"audit for {as_of} (`segments run --as-of {as_of}`, or clear the DAG run from its "
        "build task)."
    )
    refuse = f"Refusing to publish {target} (run {run_id})"
    recorded = control.load_audit(conn, audit_id)
    if recorded is None:
        raise CandidateChangedError(
            f"{refuse}: audit {audit_id} is not recorded in segments_control.audits (removed "
            f"after {control.AUDIT_RETENTION.days} days, or never run). {rerun}"
        )
    if (recorded.run_id, recorded.as_of) != (run_id, as_of):
        raise CandidateChangedError(
            f"{refuse}: audit {audit_id} checked run {recorded.run_id} for as-of "
            f"{recorded.as_of}. {rerun}"
        )
    if recorded.global_failures:
        raise CandidateChangedError(
            f"{refuse}: audit {audit_id} found {recorded.global_failures} global failure(s). "
            f"{rerun}"
        )
    if account_id is not None and account_id in recorded.failed_accounts:
        raise CandidateChangedError(
            f"{refuse}: audit {audit_id} failed this account: "
            f"{recorded.failed_accounts[account_id]}. {rerun}"
        )
    audited_q = [q for q in recorded.quarantined if account_id is None or q[0] == account_id]
    given = {k: r for k, r in quarantined.items() if account_id is None or k[0] == account_id}
    if not control.same_quarantine(audited_q, given):
        raise CandidateChangedError(
            f"{refuse}: the quarantined segments given ({sorted(given)}) are not those "
            f"audit {audit_id} decided ({[tuple(q[:2]) for q in audited_q]}). {rerun}"
        )
    return recorded


def _verify(
    conn: psycopg.Connection,
    audit_id: int,
    as_of: dt.date,
    run_id: str,
    account_id: str,
    quarantined: Mapping[tuple[str, str], str],
) -> None:
    """Refuse unless the account's copied candidate is exactly what audit `audit_id` checked
    of that account, the audit passed it and decided the same quarantine for it."""
    recorded = _recorded_audit(conn, audit_id, as_of, run_id, account_id, quarantined)
    audited = recorded.prints.for_account(account_id)
    changes = audited.differences(control.fingerprint(conn, COPIES).for_account(account_id))
    if changes:
        raise CandidateChangedError(
            f"Refusing to publish account {account_id} for {as_of} (run {run_id}): the "
            f"candidate is not the one audit {audit_id} checked at "
            f"{recorded.audited_at:%Y-%m-%d %H:%M:%S %Z}. It was rebuilt after the audit "
            "(another run, a backfill or a manual dbt build). What changed:\n  "
            + "\n  ".join(changes)
            + f"\nServing of {account_id} is unchanged. Rerun build and audit for {as_of}."
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
    channels = recipient_rule.channels(contacts=sql.Identifier(COPIES["contacts"]))
    # Each statement joins whole sets against serving's recipients and members, which have no
    # column statistics: a nested loop there would probe once per recipient row.
    database.run_sql(conn, "planner.sql", "no_nested_loops")
    _run(conn, "write_recipients", {**p, **recipient_rule.rule_params()}, channels=channels)
    database.run_sql(conn, "planner.sql", "nested_loops")


def _write_log(
    conn: psycopg.Connection, p: dict[str, Any], *, accepted: bool = False
) -> PublishResult:
    published, quarantined = _run(conn, "counts").fetchone()
    status = "accepted" if accepted else "partial" if quarantined else "published"
    publish_id = _run(
        conn,
        "write_log",
        {**p, "published": published, "quarantined": quarantined, "status": status},
    ).fetchone()[0]
    counts: dict[str, dict[str, int]] = {}
    stale: dict[str, dict[str, str]] = {}
    rows = _run(conn, "serving_segments", p).fetchall()
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
        publish_ids={p["account_id"]: publish_id},
    )
