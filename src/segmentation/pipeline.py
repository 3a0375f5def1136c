"""The pipeline steps. The CLI (`segments run`) and the Airflow DAG both call these.

Write-audit-publish, one function per DAG task:

    check_sources -> validate -> build(as_of) -> audit(as_of, run_id)
        -> publish(as_of, run_id, audit) -> record_history(as_of, run_id)
        -> finish(audit)

Build, audit, publish and history of a run hold the run lease (segmentation.control.hold),
taken at the start of `build` and released by `finish` or a failure, so two runs (`segments
run`, the DAG, a backfill) never interleave. The audit records a fingerprint of what it
checked, and `publish` refuses a candidate that differs from it.

`build` writes only `segments_audit` (and staging views); nothing reaches
`segments_serving` before the audit passed, and `publish` is one transaction, so a failure
anywhere before it leaves what Broadcast reads unchanged. A segment that fails its own bounds
is quarantined: the others publish, history records, and `finish` then raises
QuarantineError so the run ends failed and people look at it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from segmentation import config, control
from segmentation.dbt_invoke import run_dbt
from segmentation.errors import AuditError, DatabaseError, QuarantineError

log = logging.getLogger(__name__)

# Serving tables are written by publish (one transaction), never by dbt.
BUILD_EXCLUDE = "path:models/serving"


def dbt_vars(as_of: dt.date | None) -> dict[str, Any]:
    """dbt vars for a run. Without an as-of date each account uses today in its own timezone."""
    return {"as_of": as_of.isoformat()} if as_of else {}


def today(timezone: str | None = None) -> dt.date:
    """Today in the configured timezone (SEGMENTS_TIMEZONE): the as-of date of a manual run."""
    return dt.datetime.now(ZoneInfo(timezone or config.timezone())).date()


def manual_run_id(now: dt.datetime | None = None) -> str:
    """Run id for runs outside Airflow, shaped like Airflow's own manual run ids."""
    return f"manual__{(now or dt.datetime.now(dt.UTC)).isoformat()}"


def check_sources() -> Any:
    """`dbt source freshness`: stale sources warn, missing or empty ones fail."""
    _sync_generated()
    return run_dbt(["source", "freshness"])


def build_staging(as_of: dt.date | None = None) -> Any:
    """Build and test the staging layer and the rows it rejects (int_crm__rejected_rows)."""
    _sync_generated()
    return run_dbt(["build", "--select", "staging", "int_crm__rejected_rows"], dbt_vars(as_of))


def validate(paths: list[str] | None = None) -> Any:
    """Validate the segment definitions; a bad one raises DefinitionError naming file:line."""
    return validate_definitions(paths)


def build(as_of: dt.date, run_id: str | None = None) -> Any:
    """Render the definitions to dbt models, then `dbt build` (models + tests) for `as_of`.

    Everything lands in segments_staging / segments_audit; a failed model or test raises
    DbtError and the serving schema is untouched. Takes the run lease for `run_id` (kept for
    the run's next steps); without a run id, for this build only.
    """
    from segmentation.definitions import api

    with control.hold(as_of, run_id or manual_run_id(), keep=run_id is not None):
        api.drop_stale_models(render_definitions())
        return run_dbt(["build", "--exclude", BUILD_EXCLUDE], dbt_vars(as_of))


def audit(as_of: dt.date, run_id: str) -> Any:
    """Run the GX audit. Global failures raise AuditError (nothing may be published)."""
    from segmentation.audit import run_audit

    with control.hold(as_of, run_id):
        result = run_audit(as_of, run_id)
        # Raised inside the hold: a blocked publish ends the run, so its lease is released.
        if result.global_failures:
            raise AuditError(
                f"The audit of {as_of} blocks the publish; serving is unchanged.\n"
                f"{result.summary()}"
            )
    return result


def publish(as_of: dt.date, run_id: str, audit_result: Any, *, allow_rewind: bool = False) -> Any:
    """Publish the audited candidate; quarantined segments keep their last good version.

    Only exactly the candidate that `audit_result` checked is published (its audit_id)."""
    from segmentation import publish as publish_module

    if audit_result.global_failures:
        raise AuditError(f"Refusing to publish {as_of}: {audit_result.summary()}")
    if audit_result.audit_id is None:
        raise AuditError(
            f"Refusing to publish {as_of} for run {run_id}: the audit result names no recorded "
            "audit (audit_id), so nothing proves what it checked. Rerun the audit."
        )
    with control.hold(as_of, run_id):
        return publish_module.publish(
            as_of,
            run_id,
            dict(audit_result.quarantined),
            allow_rewind=allow_rewind,
            audit_id=audit_result.audit_id,
        )


def record_history(as_of: dt.date, run_id: str) -> dict[str, Any]:
    """Append this date's membership changes to segments_history (idempotent per date)."""
    from segmentation import history

    with control.hold(as_of, run_id):
        return history.record_history(as_of, run_id)


def finish(audit_result: Any, run_id: str | None = None) -> None:
    """End the run: release its lease, then fail it when anything was quarantined (after the
    rest published and history ran)."""
    if run_id is not None:
        control.release(run_id)
    if audit_result.quarantined:
        raise QuarantineError(
            f"{len(audit_result.quarantined)} segment(s) quarantined: they kept their last "
            f"published membership and are marked stale.\n{audit_result.summary()}"
        )


def run(
    as_of: dt.date | None = None, run_id: str | None = None, *, allow_rewind: bool = False
) -> dict[str, Any]:
    """The whole pipeline once, in DAG order. Returns what was published."""
    as_of = as_of or today()
    run_id = run_id or manual_run_id()
    log.info("pipeline run %s for as-of %s", run_id, as_of)
    # One process runs every step: it holds the lease throughout and releases it at the end.
    with control.hold(as_of, run_id, keep=False):
        check_sources()
        validate()
        build(as_of, run_id)
        audit_result = audit(as_of, run_id)
        published = publish(as_of, run_id, audit_result, allow_rewind=allow_rewind)
        history = record_history(as_of, run_id)
        finish(audit_result, run_id)
    return {"as_of": as_of, "run_id": run_id, "published": published, "history": history}


@dataclass(frozen=True)
class AccountStatus:
    account_id: str
    package: str | None
    timezone: str
    timezone_is_valid: bool
    timezone_raw: str | None
    segments: int
    stale_segments: int
    memberships: int
    latest_as_of: dt.date | None
    latest_published_at: dt.datetime | None


@dataclass(frozen=True)
class Status:
    accounts: list[AccountStatus]
    lease: str | None  # who holds the run lease now, or None when it is free

    def warnings(self) -> list[str]:
        return [
            f"account {a.account_id}: timezone {a.timezone_raw!r} is unknown to the server; its "
            f"runs use {a.timezone}. Fix accounts.timezone in the CRM (an IANA name such as "
            "Asia/Makassar)."
            for a in self.accounts
            if not a.timezone_is_valid
        ]


def status() -> Status:
    """Per staged account: its timezone (and whether it fell back), what is published, how
    much is stale; and the run lease. Needs a built staging layer (`segments run`)."""
    from psycopg import sql

    from segmentation import database

    query = sql.SQL(database.read_sql("status.sql")).format(
        staging=sql.Identifier(config.SCHEMA_STAGING),
        serving=sql.Identifier(config.SCHEMA_SERVING),
    )
    with database.connect() as conn:
        if conn.execute(
            "select to_regclass(%s) is null",
            (f"{config.SCHEMA_STAGING}.stg_crm__accounts",),
        ).fetchone()[0]:
            raise DatabaseError(
                "No staged accounts yet: run the pipeline once (`segments run`) and ask again."
            )
        accounts = [AccountStatus(*row) for row in conn.execute(query).fetchall()]
        lease = control.current_lease(conn)
    held = None if lease.run_id is None or lease.stale else lease.describe()
    for warning in (status := Status(accounts, held)).warnings():
        log.warning(warning)
    return status


def published_counts() -> dict[str, dict[str, int]]:
    """account -> segment -> member count as Broadcast sees it now (segments_serving)."""
    from segmentation import database

    with database.connect() as conn:
        rows = conn.execute(
            f"select account_id, segment_key, member_count from {config.SCHEMA_SERVING}.segments "
            "order by account_id, segment_key"
        ).fetchall()
    counts: dict[str, dict[str, int]] = {}
    for account, segment, members in rows:
        counts.setdefault(account, {})[segment] = members
    return counts


# --- segment definitions (the language engineer's part) -------------------------------------


def validate_definitions(paths: list[str] | None = None, *, offline: bool = False) -> Any:
    """Validate segment_defs/ (or `paths`); raise DefinitionError listing every
    file:line:col error. Accounts are checked against crm_raw.accounts unless `offline`
    or the database can't be reached. Returns the validated DefinitionSet."""
    from segmentation.definitions import api

    return api.validate(paths, offline=offline)


def _sync_generated() -> None:
    """Every dbt command parses the generated files: rewrite them from the definitions first."""
    from segmentation.definitions import api

    api.sync_generated()


def render_definitions(*, offline: bool = False) -> Any:
    """Validate all definitions, then write the generated dbt models
    (models/segments/generated/) and the registry macro. Returns a RenderResult
    (`.models`: model name -> Segment, `.disabled`, `.files`). Writes nothing on error."""
    from segmentation.definitions import api

    return api.compile_definitions(offline=offline)
