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
applies); its catalogue row is marked `stale` with the audit's reason. Publishing the same
candidate twice for the same as-of date changes nothing but `segments.published_at` and adds
a `publish_log` row.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from segmentation import settings
from segmentation.errors import CandidateChangedError, PublishError, PublishRewindError
from segmentation.warehouse import control, database

log = logging.getLogger(__name__)

CANDIDATE_MEMBERSHIP = "segments_audit.int_segment_membership"
CANDIDATE_CATALOGUE = "segments_audit.int_segment_catalogue"
CANDIDATE_GROUPS = "segments_audit.int_group_assignments"
CANDIDATE_AS_OF = "segments_audit.int_segment_as_of"
STAGED_CONTACTS = "segments_staging.stg_crm__contacts"

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

# Valid addresses per channel. Staging already nulls invalid ones; this is the contract's guard.
E164 = r"^\+[1-9][0-9]{6,14}$"
EMAIL = r"^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$"


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
    """
    published_at = dt.datetime.now(dt.UTC)
    q_keys = sorted(quarantined)
    params: dict[str, Any] = {
        "as_of": as_of,
        "run_id": run_id,
        "published_at": published_at,
        "q_acc": [k[0] for k in q_keys],
        "q_seg": [k[1] for k in q_keys],
        "q_reason": [quarantined[k] or "quarantined by the audit" for k in q_keys],
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
            _prepare(conn, params)
            _write_members(conn, params)
            _write_segments(conn, params)
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


def last_published_counts() -> dict[tuple[str, str], int]:
    """(account_id, segment_key) -> member count last published (stale segments: the kept one).

    Segments that never published successfully are absent, so a first publish has no base.
    """
    with database.connect() as conn:
        rows = conn.execute(
            "select account_id, segment_key, member_count from segments_serving.segments "
            "where published_at is not null"
        ).fetchall()
    return {(a, s): n for a, s, n in rows}


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
    latest = conn.execute("select max(as_of) from segments_serving.publish_log").fetchone()[0]
    if latest is not None and as_of < latest and not allow_rewind:
        raise PublishRewindError(
            f"Serving already shows as-of {latest}; publishing the older date {as_of} would roll "
            "Broadcast back and break the membership history. The build and audit of that "
            "date are in segments_audit. To roll serving back on purpose, publish with "
            "allow_rewind=True."
        )


def _snapshot(conn: psycopg.Connection) -> None:
    """Copy the candidate: everything below reads the copies, so the fingerprint verified
    is exactly what is published, whatever a concurrent build does to the live relations."""
    conn.execute(
        f"""
        create temp table pub_cand_members on commit drop as
        select account_id, segment_key, contact_id from {CANDIDATE_MEMBERSHIP}
        """
    )
    conn.execute(
        f"""
        create temp table pub_cand_catalogue on commit drop as
        select
            account_id, segment_key, name, description, owner, visibility, tags, enabled,
            definition_hash, expect_min_members, expect_max_members, expect_max_change_pct
        from {CANDIDATE_CATALOGUE}
        """
    )
    groups = CANDIDATE_GROUPS if _relation_exists(conn, CANDIDATE_GROUPS) else None
    conn.execute(
        sql.SQL(
            "create temp table pub_cand_groups on commit drop as "
            "select account_id, group_key, contact_id, segment_key from {} as g"
        ).format(control.relation_or_empty(conn, "groups", groups))
    )
    conn.execute(
        f"""
        create temp table pub_cand_contacts on commit drop as
        select contact_id, account_id, email, phone, consent_whatsapp, consent_email, consent_sms
        from {STAGED_CONTACTS}
        """
    )
    conn.execute("analyze pub_cand_members, pub_cand_catalogue, pub_cand_groups, pub_cand_contacts")


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


def _prepare(conn: psycopg.Connection, p: dict[str, Any]) -> None:
    """Session-private working sets (temporary, dropped at commit or rollback)."""
    conn.execute(
        """
        create temp table pub_quarantine on commit drop as
        select *
        from unnest(%(q_acc)s::text [], %(q_seg)s::text [], %(q_reason)s::text [])
            as q (account_id, segment_key, reason)
        """,
        p,
    )
    conn.execute(
        """
        create temp table pub_catalogue on commit drop as
        select distinct on (c.account_id, c.segment_key)
            c.account_id,
            c.segment_key,
            coalesce(c.name, c.segment_key) as name,
            c.description,
            c.owner,
            c.visibility,
            coalesce(c.tags, '{}')::text [] as tags,
            c.definition_hash,
            q.reason as quarantine_reason,
            q.account_id is not null as quarantined
        from pub_cand_catalogue as c
        left join pub_quarantine as q
            on c.account_id = q.account_id and c.segment_key = q.segment_key
        where c.enabled
        order by c.account_id, c.segment_key
        """
    )
    conn.execute(
        """
        create temp table pub_members on commit drop as
        select distinct m.account_id, m.segment_key, m.contact_id
        from pub_cand_members as m
        inner join pub_catalogue as c
            on m.account_id = c.account_id and m.segment_key = c.segment_key
        where not c.quarantined and m.contact_id is not null
        """
    )
    conn.execute("alter table pub_members add primary key (account_id, segment_key, contact_id)")
    conn.execute("analyze pub_catalogue, pub_members")


def _write_members(conn: psycopg.Connection, p: dict[str, Any]) -> None:
    # Segments that were removed from the definitions or disabled.
    conn.execute(
        """
        delete from segments_serving.segment_members as s
        where not exists (
            select 1 from pub_catalogue as c
            where c.account_id = s.account_id and c.segment_key = s.segment_key
        )
        """
    )
    # Exits from published segments (quarantined ones keep their members).
    conn.execute(
        """
        delete from segments_serving.segment_members as s
        using pub_catalogue as c
        where
            c.account_id = s.account_id
            and c.segment_key = s.segment_key
            and not c.quarantined
            and not exists (
                select 1 from pub_members as m
                where
                    m.account_id = s.account_id
                    and m.segment_key = s.segment_key
                    and m.contact_id = s.contact_id
            )
        """
    )
    # Only a deliberate rewind can find a continuing member whose membership starts later.
    conn.execute(
        """
        update segments_serving.segment_members as s
        set member_since = %(as_of)s
        from pub_members as m
        where
            m.account_id = s.account_id
            and m.segment_key = s.segment_key
            and m.contact_id = s.contact_id
            and s.member_since > %(as_of)s
        """,
        p,
    )
    # Entries: a continuing member keeps member_since, a new one starts today.
    conn.execute(
        """
        insert into segments_serving.segment_members
            (account_id, segment_key, contact_id, member_since)
        select m.account_id, m.segment_key, m.contact_id, %(as_of)s
        from pub_members as m
        where not exists (
            select 1 from segments_serving.segment_members as s
            where
                s.account_id = m.account_id
                and s.segment_key = m.segment_key
                and s.contact_id = m.contact_id
        )
        """,
        p,
    )


def _write_segments(conn: psycopg.Connection, p: dict[str, Any]) -> None:
    conn.execute(
        """
        delete from segments_serving.segments as s
        where not exists (
            select 1 from pub_catalogue as c
            where c.account_id = s.account_id and c.segment_key = s.segment_key
        )
        """
    )
    conn.execute(
        """
        insert into segments_serving.segments (
            account_id, segment_key, name, description, owner, visibility, tags,
            definition_hash, member_count, as_of, published_at, stale, stale_reason
        )
        select
            c.account_id, c.segment_key, c.name, c.description, c.owner, c.visibility, c.tags,
            c.definition_hash, coalesce(n.members, 0), %(as_of)s, %(published_at)s, false, null
        from pub_catalogue as c
        left join (
            select account_id, segment_key, count(*)::integer as members
            from pub_members
            group by account_id, segment_key
        ) as n on c.account_id = n.account_id and c.segment_key = n.segment_key
        where not c.quarantined
        on conflict (account_id, segment_key) do update set
            name = excluded.name,
            description = excluded.description,
            owner = excluded.owner,
            visibility = excluded.visibility,
            tags = excluded.tags,
            definition_hash = excluded.definition_hash,
            member_count = excluded.member_count,
            as_of = excluded.as_of,
            published_at = excluded.published_at,
            stale = false,
            stale_reason = null
        """,
        p,
    )
    # Quarantined: the last good row stays as it was, flagged. A segment that never published
    # gets a row without membership (as_of and published_at NULL) so Broadcast sees why.
    conn.execute(
        """
        update segments_serving.segments as s
        set stale = true, stale_reason = c.quarantine_reason
        from pub_catalogue as c
        where c.quarantined and c.account_id = s.account_id and c.segment_key = s.segment_key
        """
    )
    conn.execute(
        """
        insert into segments_serving.segments (
            account_id, segment_key, name, description, owner, visibility, tags,
            definition_hash, member_count, as_of, published_at, stale, stale_reason
        )
        select
            c.account_id, c.segment_key, c.name, c.description, c.owner, c.visibility, c.tags,
            c.definition_hash, 0, null, null, true, c.quarantine_reason
        from pub_catalogue as c
        where c.quarantined
        on conflict (account_id, segment_key) do nothing
        """
    )


def _write_groups(conn: psycopg.Connection, p: dict[str, Any]) -> None:
    conn.execute(
        "create temp table pub_groups on commit drop as "
        "select account_id, group_key, contact_id, segment_key "
        "from segments_serving.group_assignments with no data"
    )
    # pub_cand_groups is empty when the group relations have not been built.
    conn.execute(
        """
        insert into pub_groups
        select distinct on (g.account_id, g.group_key, g.contact_id)
            g.account_id, g.group_key, g.contact_id, g.segment_key
        from pub_cand_groups as g
        where g.contact_id is not null and not exists (
            -- segment_key may also be a group's fallback label, not in the catalogue
            select 1 from pub_catalogue as c
            where
                c.quarantined
                and c.account_id = g.account_id
                and c.segment_key = g.segment_key
        )
        order by g.account_id, g.group_key, g.contact_id, g.segment_key
        """
    )
    # A quarantined segment keeps its assignments, unless the audited candidate now assigns
    # that contact to another segment of the group (one assignment per contact and group).
    conn.execute(
        """
        insert into pub_groups
        select s.account_id, s.group_key, s.contact_id, s.segment_key
        from segments_serving.group_assignments as s
        inner join pub_catalogue as c
            on s.account_id = c.account_id and s.segment_key = c.segment_key
        where c.quarantined and not exists (
            select 1 from pub_groups as g
            where
                g.account_id = s.account_id
                and g.group_key = s.group_key
                and g.contact_id = s.contact_id
        )
        """
    )
    conn.execute(
        """
        delete from segments_serving.group_assignments as s
        where not exists (
            select 1 from pub_groups as g
            where
                g.account_id = s.account_id
                and g.group_key = s.group_key
                and g.contact_id = s.contact_id
                and g.segment_key = s.segment_key
        )
        """
    )
    conn.execute(
        """
        insert into segments_serving.group_assignments
            (account_id, group_key, contact_id, segment_key)
        select g.account_id, g.group_key, g.contact_id, g.segment_key
        from pub_groups as g
        where not exists (
            select 1 from segments_serving.group_assignments as s
            where
                s.account_id = g.account_id
                and s.group_key = g.group_key
                and s.contact_id = g.contact_id
        )
        """
    )


def _write_recipients(conn: psycopg.Connection, p: dict[str, Any]) -> None:
    # From the serving membership as it now stands, so a quarantined segment's frozen members
    # are still filtered by today's consent and addresses: consent is never stale.
    conn.execute(
        f"""
        create temp table pub_recipients on commit drop as
        select m.account_id, m.segment_key, m.contact_id, ch.channel, ch.address
        from segments_serving.segment_members as m
        inner join pub_cand_contacts as c
            on m.account_id = c.account_id and m.contact_id = c.contact_id
        cross join lateral (
            values
            ('whatsapp', case when c.consent_whatsapp then c.phone end),
            ('sms', case when c.consent_sms then c.phone end),
            ('email', case when c.consent_email then c.email end)
        ) as ch (channel, address)
        where
            (ch.channel in ('whatsapp', 'sms') and ch.address ~ '{E164}')
            or (ch.channel = 'email' and ch.address ~ '{EMAIL}')
        """
    )
    # A quarantined segment keeps its recipients like its members: a frozen member who is no
    # longer a staged contact (a mass deletion is what quarantine guards against) keeps the
    # rows last published. A member still staged follows today's consent and address above.
    conn.execute(
        """
        insert into pub_recipients
        select r.account_id, r.segment_key, r.contact_id, r.channel, r.address
        from segments_serving.broadcast_recipients as r
        inner join pub_catalogue as q
            on r.account_id = q.account_id and r.segment_key = q.segment_key
        where q.quarantined and not exists (
            select 1 from pub_cand_contacts as c
            where c.account_id = r.account_id and c.contact_id = r.contact_id
        )
        """
    )
    conn.execute(
        """
        delete from segments_serving.broadcast_recipients as s
        where not exists (
            select 1 from pub_recipients as r
            where
                r.account_id = s.account_id
                and r.segment_key = s.segment_key
                and r.contact_id = s.contact_id
                and r.channel = s.channel
                and r.address = s.address
        )
        """
    )
    conn.execute(
        """
        insert into segments_serving.broadcast_recipients
            (account_id, segment_key, contact_id, channel, address)
        select r.account_id, r.segment_key, r.contact_id, r.channel, r.address
        from pub_recipients as r
        where not exists (
            select 1 from segments_serving.broadcast_recipients as s
            where
                s.account_id = r.account_id
                and s.segment_key = r.segment_key
                and s.contact_id = r.contact_id
                and s.channel = r.channel
        )
        """
    )


def _write_log(conn: psycopg.Connection, p: dict[str, Any]) -> PublishResult:
    published, quarantined = conn.execute(
        "select count(*) filter (where not quarantined), count(*) filter (where quarantined) "
        "from pub_catalogue"
    ).fetchone()
    status = "partial" if quarantined else "published"
    publish_id = conn.execute(
        """
        insert into segments_serving.publish_log
            (run_id, as_of, published_at, segments_published, segments_quarantined, status)
        values (%(run_id)s, %(as_of)s, %(published_at)s, %(published)s, %(quarantined)s,
            %(status)s)
        returning publish_id
        """,
        {**p, "published": published, "quarantined": quarantined, "status": status},
    ).fetchone()[0]
    counts: dict[str, dict[str, int]] = {}
    stale: dict[str, dict[str, str]] = {}
    rows = conn.execute(
        "select account_id, segment_key, member_count, stale, stale_reason "
        "from segments_serving.segments order by account_id, segment_key"
    ).fetchall()
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
