"""`segments accept <account>/<key>`: release one quarantined segment by publishing the
candidate the latest audit checked, once, and record who accepted it and why.

A quarantine (audit suite segment_bounds) keeps a segment at its last good membership and
marks it stale until a later run passes its bounds. When the change is right (a mass deletion
that really happened, a campaign that really doubled a segment), an operator accepts it:

- only a segment that serving shows stale AND that the latest recorded audit quarantined can
  be accepted; an older quarantine whose candidate has since been rebuilt cannot, because
  what would be published is no longer what was audited;
- the publish is publish.publish with the audit's own verdict, its audit_id (the candidate
  must still match that audit's fingerprint, warehouse.control) and `accepted`: that one
  segment publishes with the run's other segments as they were audited (unchanged when the
  run already published them), other quarantined segments stay quarantined, all in one
  transaction whose publish_log row has status 'accepted', accepted_by and accept_reason;
- history then records that date again (a rerun of the date replaces its rows), so serving
  and history agree.

It holds the run lease of the audited run meanwhile, so no build can replace the candidate.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
from dataclasses import dataclass

from segmentation.errors import AcceptError, PublishError
from segmentation.language.suggest import did_you_mean
from segmentation.steps import definitions
from segmentation.steps import history as history_step
from segmentation.steps import publish as publish_step
from segmentation.warehouse import control, database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AcceptResult:
    account_id: str
    segment_key: str
    as_of: dt.date
    run_id: str  # the audited run whose candidate was published
    audit_id: int
    accepted_by: str
    reason: str
    released: str  # the quarantine reason that no longer holds it
    members_before: int  # what serving showed (the kept membership)
    members: int  # what it shows now
    publish_id: int | None


def default_by() -> str:
    """Who accepts when nobody is named: the OS user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def accept(account: str, key: str, *, reason: str, by: str | None = None) -> AcceptResult:
    """Publish the audited candidate of the quarantined segment `account`/`key` once.

    AcceptError when the reason is empty, the segment is unknown or not quarantined, the
    latest audit did not quarantine it, that audit's run never published, or the candidate
    changed since that audit (serving is unchanged in every case)."""
    name = f"{account}/{key}"
    reason = (reason or "").strip()
    by = (by or "").strip() or default_by()
    if not reason:
        raise AcceptError(
            f"Accepting {name} needs a reason (--reason TEXT): it is recorded in "
            "segments_serving.publish_log with who accepted it."
        )
    recorded = _latest_audit(name)
    with control.hold(recorded.as_of, recorded.run_id, keep=False):
        # Checked again under the lease: no run can have audited in between now.
        recorded = _latest_audit(name)
        members_before, released = _quarantined_segment(account, key, recorded)
        quarantined = {(a, s): r for a, s, r in recorded.quarantined}
        try:
            result = publish_step.publish_account(
                recorded.as_of,
                recorded.run_id,
                account,
                quarantined,
                audit_id=recorded.audit_id,
                definitions=publish_step.plan_definitions(definitions.read_plan()),
                accepted={key: (by, reason)},
            )
        except PublishError as exc:
            raise AcceptError(f"Could not accept {name}: {exc}") from exc
        history_step.record_history(recorded.as_of, recorded.run_id, [account])
    members = result.counts.get(account, {}).get(key, 0)
    log.info(
        "accepted %s (as-of %s, audit %d) by %s: %d -> %d members; reason: %s",
        name,
        recorded.as_of,
        recorded.audit_id,
        by,
        members_before,
        members,
        reason,
    )
    return AcceptResult(
        account,
        key,
        recorded.as_of,
        recorded.run_id,
        recorded.audit_id,
        by,
        reason,
        released,
        members_before,
        members,
        result.publish_id,
    )


def _latest_audit(name: str) -> control.RecordedAudit:
    with database.connect() as conn:
        recorded = control.latest_audit(conn)
    if recorded is None:
        raise AcceptError(
            f"Cannot accept {name}: no audit is recorded (segments_control.audits), so nothing "
            "proves what the candidate holds. Run the pipeline (`segments run`) first."
        )
    if recorded.global_failures:
        raise AcceptError(
            f"Cannot accept {name}: the latest audit ({recorded.audit_id}, run "
            f"{recorded.run_id}, as-of {recorded.as_of}) found {recorded.global_failures} "
            "global failure(s), so its candidate may not be published. Fix them and rerun "
            "the pipeline; accept the segment if it is still quarantined then."
        )
    return recorded


def _quarantined_segment(
    account: str, key: str, recorded: control.RecordedAudit
) -> tuple[int, str]:
    """(members serving keeps, the audit's reason) of a segment that serving shows stale and
    the latest audit quarantined; AcceptError saying why not otherwise."""
    name = f"{account}/{key}"
    with database.connect() as conn:
        row = database.run_sql(
            conn, "listing.sql", "published_segment", {"account_id": account, "segment_key": key}
        ).fetchone()
        if row is None:
            known = database.run_sql(conn, "accept.sql", "segment_keys").fetchall()
            accounts = sorted({a for a, _ in known})
            if account not in accounts:
                hint = did_you_mean(account, accounts)
                raise AcceptError(
                    f"Cannot accept {name}: serving has no account '{account}'{hint}. "
                    "`segments status` lists the accounts and their stale segments."
                )
            hint = did_you_mean(key, [s for a, s in known if a == account])
            raise AcceptError(
                f"Cannot accept {name}: serving has no segment '{key}' for {account}{hint}. "
                "`segments status` lists the stale (quarantined) segments."
            )
        published = database.run_sql(
            conn,
            "accept.sql",
            "run_published",
            {"run_id": recorded.run_id, "as_of": recorded.as_of, "account_id": account},
        ).fetchone()[0]
    members, _as_of, _published_at, stale, stale_reason = row
    if not stale:
        raise AcceptError(
            f"Cannot accept {name}: it is not quarantined (serving shows {members} members as "
            f"of {_as_of}, not stale), so there is nothing to accept."
        )
    audit_reason = {(a, s): r for a, s, r in recorded.quarantined}.get((account, key))
    if audit_reason is None:
        raise AcceptError(
            f"Cannot accept {name}: it is stale ({stale_reason}), but the latest audit "
            f"({recorded.audit_id}, run {recorded.run_id}, as-of {recorded.as_of}) did not "
            "quarantine it, so the candidate that audit checked is not the one that was held "
            "back. Rerun the pipeline for the account (`segments run`); accept the segment if "
            "it is quarantined again."
        )
    if not published:
        raise AcceptError(
            f"Cannot accept {name}: run {recorded.run_id} (as-of {recorded.as_of}) was "
            "audited but never published. Publish the run first (rerun it: `segments run "
            f"--as-of {recorded.as_of}`); accept the segment if it is quarantined then."
        )
    return members, audit_reason
