"""The pipeline steps. The CLI (`segments run`) and the Airflow DAG both call these.

Write-audit-publish, one function per DAG task:

    check_sources -> validate -> build(as_of) -> cluster(as_of, run_id) -> audit(as_of, run_id)
        -> publish(as_of, run_id, audit) -> record_history(as_of, run_id)
        -> build_analytics(as_of, run_id) -> finish(audit)

The definitions are compiled once per run, by `check_sources` (it must render them before
dbt parses the project), into the plan file `.local/target/segments_plan.json`
(steps.definitions). `validate` reports that plan's errors, `build` renders and builds it,
`audit` records its hash and `publish` refuses a candidate whose plan changed since the audit.

Build, audit, publish and history of a run hold the run lease (segmentation.warehouse.control.hold),
taken at the start of `build` and released by `finish` or a failure, so two runs (`segments
run`, the DAG, a backfill) never interleave. The audit records a fingerprint of what it
checked, and `publish` refuses a candidate that differs from it.

`build` writes only `segments_staging` and `segments_audit`; nothing reaches
`segments_serving` before the audit passed, and `publish` is one transaction, so a failure
anywhere before it leaves what Broadcast reads unchanged. A segment that fails its own bounds
is quarantined: the others publish, history records, and `finish` then raises
QuarantineError so the run ends failed and people look at it.

A run covers a set of accounts for one as-of date, and a failure that one account owns is
contained to it: `failed` (account -> one-line cause, JSON-safe for XCom) accumulates through
the run (a bad definition of the account, a failing model of its own, an audit failure of
its own rows, its publish). A failed account is skipped by later steps, keeps its last
publish and has its serving segments marked stale with the cause; every other account
publishes and records history, and `finish` raises AccountFailedError naming each failed
account. Failures no account owns (staging, a shared model, a tenant leak) fail the run as
before, with serving unchanged.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import sql

from segmentation import settings
from segmentation.compiler import onepass
from segmentation.compiler.render import RenderResult
from segmentation.errors import (
    AccountFailedError,
    AuditError,
    CandidateChangedError,
    DatabaseError,
    DbtNodesFailedError,
    QuarantineError,
)
from segmentation.language.project import DefinitionSet
from segmentation.steps import clusters, definitions, sources
from segmentation.steps import history as history_step
from segmentation.steps import publish as publish_step
from segmentation.steps.audit import AuditResult, run_audit
from segmentation.steps.publish import PublishResult
from segmentation.steps.selection import ANALYTICS_MODELS, BUILD_EXCLUDE, run_vars
from segmentation.warehouse import control, database
from segmentation.warehouse.dbt_runner import run_dbt

log = logging.getLogger(__name__)


def dbt_vars(
    as_of: dt.date | None,
    accounts: Sequence[str] | None = None,
    excluded: Sequence[str] = (),
) -> dict[str, Any]:
    """dbt vars for a run (selection.run_vars): the as-of date and the run's accounts."""
    return run_vars(as_of, accounts, excluded)


def today(timezone: str | None = None) -> dt.date:
    """Today in the configured timezone (SEGMENTS_TIMEZONE): the as-of date of a manual run."""
    return dt.datetime.now(ZoneInfo(timezone or settings.timezone())).date()


def manual_run_id(now: dt.datetime | None = None) -> str:
    """Run id for runs outside Airflow, shaped like Airflow's own manual run ids."""
    return f"manual__{(now or dt.datetime.now(dt.UTC)).isoformat()}"


def check_sources() -> sources.SourceCheck:
    """Compile the definitions (the run's one validation; invalid ones leave no generated
    files, and `validate` reports them), then check the raw tables (steps.sources): an empty
    accounts or contacts table raises SourceEmptyError, an empty optional one warns, and
    `dbt source freshness` checks the rest (stale sources warn, missing ones fail)."""
    definitions.sync_generated()
    return sources.check()


def build_staging(as_of: dt.date | None = None) -> Any:
    """Build and test the staging layer and the rows it rejects (int_crm__rejected_rows)."""
    _ensure_generated()
    return run_dbt(["build", "--select", "staging", "int_crm__rejected_rows"], dbt_vars(as_of))


def validate(paths: list[str] | None = None) -> Any:
    """Report the run's compiled plan: a bad template raises DefinitionError naming
    file:line; accounts whose own files are invalid are left out of the plan
    (`failed_definitions`); an unreachable database raises DatabaseError (a run never
    validates offline). With `paths`, validate just those files (the rest is context)."""
    if paths is not None:
        return definitions.validate(paths)
    return definitions.online_plan()


def failed_definitions(plan: Mapping[str, Any]) -> dict[str, str]:
    """account -> cause, for the accounts whose own definition files (segment_defs/<account>/)
    have errors: the plan leaves them out, the run skips them and fails naming them."""
    return definitions.failed_definitions(dict(plan))


def build(
    as_of: dt.date,
    run_id: str | None = None,
    accounts: Sequence[str] | None = None,
    failed: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Render the definitions to dbt models, then `dbt build` (models + tests) for `as_of`
    and `accounts` (None: every account). Returns account -> cause for every account that
    cannot be published this run: `failed`, the accounts the plan left out for invalid
    definitions, and the accounts whose own models or tests failed.

    When nodes of one account fail, the build runs again with that account excluded (var
    excluded_accounts, its models left out), so the others can publish. A failure no single
    account owns (staging, a template or feature model, a mart) raises DbtError. Everything
    lands in segments_staging / segments_audit; the serving schema is untouched. Takes the
    run lease for `run_id` (kept for the run's next steps); without a run id, for this
    build only.
    """
    failed = dict(failed or {})
    with control.hold(as_of, run_id or manual_run_id(), keep=run_id is not None):
        plan = definitions.current_plan()
        in_scope = None if accounts is None else set(accounts)
        for account, cause in failed_definitions(plan).items():
            if in_scope is None or account in in_scope:
                failed.setdefault(account, cause)
        definitions.drop_stale_models(plan)
        owned = _own_models(plan)
        while True:
            left_out = sorted(m for a in failed for m in owned.get(a, ()))
            args = ["build", "--exclude", BUILD_EXCLUDE, *left_out]
            try:
                run_dbt(args, dbt_vars(as_of, accounts, sorted(failed)))
                return failed
            except DbtNodesFailedError as exc:
                causes = _failed_node_accounts(exc.nodes, owned)
                if causes is None or not set(causes) - set(failed):
                    raise
                for account, cause in causes.items():
                    failed.setdefault(account, cause)
                log.warning(
                    "dbt build of %s failed for account(s) %s; building again without them",
                    as_of,
                    ", ".join(sorted(causes)),
                )


def _own_models(plan: Mapping[str, Any]) -> dict[str, list[str]]:
    """account -> the generated models of its own definitions (templates are nobody's)."""
    owned: dict[str, list[str]] = {}
    for seg in plan["segments"]:
        if not seg["template"] and seg["enabled"]:
            owned.setdefault(seg["account"], []).append(seg["model"])
    # Under one_pass the account's own segments are evaluated in its pass model: left out too.
    for account, models in owned.items():
        models.append(onepass.pass_model(account))
    return owned


def _failed_node_accounts(
    nodes: Sequence[Mapping[str, Any]], owned: Mapping[str, Sequence[str]]
) -> dict[str, str] | None:
    """account -> cause for failed dbt nodes that each belong to one account (a model tagged
    `account:<id>`, one of its own models, or a test of such a model); None when any failed
    node belongs to no single account."""
    by_model = {model: account for account, models in owned.items() for model in models}
    causes: dict[str, str] = {}
    for node in nodes:
        owners = {t.split(":", 1)[1] for t in node["tags"] if t.startswith("account:")}
        owners.discard("*")
        node_id = str(node["unique_id"])
        # A model is its own; a test belongs to the models it tests.
        tested = [node_id] if node_id.startswith("model.") else node.get("depends_on", [])
        for uid in tested:
            if uid.startswith("model."):
                name = uid.rsplit(".", 1)[-1]
                owners.add(by_model.get(name, "*"))
        if len(owners) != 1 or "*" in owners:
            return None
        (account,) = owners
        # dbt's message: "Database Error in model ...", the database's words, a path.
        lines = [line.strip() for line in str(node["message"] or "failed").splitlines()]
        message = ": ".join(x for x in lines if x and not x.startswith("compiled code"))
        causes.setdefault(
            account, f"dbt: {node['unique_id']} failed: {message}; fix it and rerun the date"
        )
    return causes


def audit(as_of: dt.date, run_id: str, failed: Mapping[str, str] | None = None) -> AuditResult:
    """Run the GX audit of the candidate the run's plan built. A global failure whose rows
    all belong to some accounts fails just those (`AuditResult.failed_accounts`); one that no
    account owns raises AuditError (nothing may be published). `failed` (accounts that
    already failed this run) is only logged: publish skips them whatever the audit says."""
    with control.hold(as_of, run_id):
        plan = _built_plan(as_of)
        result = run_audit(as_of, run_id)
        result.plan_hash = plan["plan_hash"]
        # Raised inside the hold: a blocked publish ends the run, so its lease is released.
        if result.blocking_failures:
            raise AuditError(
                f"The audit of {as_of} blocks the publish of every account; serving is "
                f"unchanged.\n{result.summary()}"
            )
    if failed:
        log.info("audit of %s: already failed this run: %s", as_of, ", ".join(sorted(failed)))
    for account, cause in sorted(result.failed_accounts.items()):
        log.error("audit of %s fails account %s: %s", as_of, account, cause)
    return result


def _built_plan(as_of: dt.date) -> dict[str, Any]:
    """The plan the candidate was built from (the plan file; never recompiled here)."""
    plan = definitions.read_plan()
    if plan is None or plan["errors"]:
        raise AuditError(
            f"No valid compiled plan for {as_of} ({definitions.plan_path()}): build first "
            "(`segments run`, or the DAG's build task). Serving is unchanged."
        )
    return plan


def publish(
    as_of: dt.date,
    run_id: str,
    audit_result: AuditResult,
    *,
    allow_rewind: bool = False,
    failed: Mapping[str, str] | None = None,
    accounts: Sequence[str] | None = None,
) -> PublishResult:
    """Publish the audited candidate, one transaction per account; quarantined segments keep
    their last good version. The accounts in `failed` and those the audit failed are not
    published (marked stale); a failure in one account's publish is added to
    `PublishResult.failed` and the others still publish.

    Only exactly the candidate that `audit_result` checked is published (its audit_id), and
    only while the plan file is the one the audit read."""
    if audit_result.blocking_failures:
        raise AuditError(f"Refusing to publish {as_of}: {audit_result.summary()}")
    if audit_result.audit_id is None:
        raise AuditError(
            f"Refusing to publish {as_of} for run {run_id}: the audit result names no recorded "
            "audit (audit_id), so nothing proves what it checked. Rerun the audit."
        )
    plan = definitions.read_plan()
    current = plan["plan_hash"] if plan else None
    if audit_result.plan_hash is not None and current != audit_result.plan_hash:
        raise CandidateChangedError(
            f"Refusing to publish {as_of} for run {run_id}: the compiled plan changed since the "
            f"audit (audited {audit_result.plan_hash[:12]}, now {str(current)[:12]}), so the "
            "candidate may not be what the definitions say. Serving is unchanged: rerun the "
            "build and audit."
        )
    with control.hold(as_of, run_id):
        return publish_step.publish(
            as_of,
            run_id,
            dict(audit_result.quarantined),
            allow_rewind=allow_rewind,
            audit_id=audit_result.audit_id,
            definitions=publish_step.plan_definitions(plan),
            accounts=accounts,
            failed={**(failed or {}), **audit_result.failed_accounts},
        )


def record_history(
    as_of: dt.date, run_id: str, accounts: Sequence[str] | None = None
) -> dict[str, Any]:
    """Append this date's membership changes to segments_history for `accounts` (None: every
    account serving shows as-of `as_of`), one transaction per account (idempotent per
    account and date)."""
    with control.hold(as_of, run_id):
        return history_step.record_history(as_of, run_id, accounts)


def build_analytics(as_of: dt.date, run_id: str) -> Any:
    """Build and test the performance marts (segments_marts: flow, stability, migration,
    KPIs, industry trends) for `as_of`, from the history record_history just wrote. Each is
    a table rebuilt from history and staging up to `as_of`, so a rerun gives the same rows.
    A failed model or test raises DbtError; serving and history are untouched."""
    with control.hold(as_of, run_id):
        _ensure_generated()
        return run_dbt(["build", "--select", ANALYTICS_MODELS], dbt_vars(as_of))


def finish(
    audit_result: AuditResult, run_id: str | None = None, failed: Mapping[str, str] | None = None
) -> None:
    """End the run: release its lease, then fail it when an account failed (AccountFailedError
    naming each and its cause) or anything was quarantined (QuarantineError), after the rest
    published and history ran."""
    if run_id is not None:
        control.release(run_id)
    failed = {**audit_result.failed_accounts, **(failed or {})}
    if failed:
        quarantine = (
            f"Also {len(audit_result.quarantined)} segment(s) quarantined:\n"
            f"{audit_result.summary()}"
            if audit_result.quarantined
            else ""
        )
        raise AccountFailedError(failed, extra=quarantine)
    if audit_result.quarantined:
        raise QuarantineError(
            f"{len(audit_result.quarantined)} segment(s) quarantined: they kept their last "
            f"published membership and are marked stale.\n{audit_result.summary()}"
        )


# The phases of `run`, in order, with what each does (for a progress display).
STEPS: dict[str, str] = {
    "check_sources": "compile the definitions, check source freshness",
    "validate": "report the compiled plan's errors",
    "build": "dbt build: staging, features, segments, marts",
    "cluster": "k-means per account; rebuild the segments that read cluster.*",
    "audit": "Great Expectations audit of the candidate",
    "publish": "publish to segments_serving (one transaction)",
    "history": "record entered/exited in segments_history",
    "analytics": "dbt build of the performance marts from history",
    "finish": "release the run lease",
}


@dataclass(frozen=True)
class StepEvent:
    """A phase of `run` started, ended or failed; `detail` is one line for a person."""

    step: str  # a key of STEPS
    state: str  # "started" | "done" | "failed"
    detail: str = ""
    seconds: float | None = None


StepCallback = Callable[[StepEvent], None]


class _Steps:
    """Logs each phase and tells the caller's callback (a progress display) about it."""

    def __init__(self, callback: StepCallback | None) -> None:
        self.callback = callback

    @contextmanager
    def step(self, name: str) -> Iterator[list[str]]:
        detail: list[str] = []  # the phase appends its one-line outcome
        self._emit(StepEvent(name, "started", STEPS[name]))
        log.info("step %s: %s", name, STEPS[name])
        started = time.monotonic()
        try:
            yield detail
        except BaseException as exc:
            elapsed = time.monotonic() - started
            log.info("step %s failed after %.1fs", name, elapsed)
            self._emit(StepEvent(name, "failed", str(exc).split("\n", 1)[0], elapsed))
            raise
        elapsed = time.monotonic() - started
        log.info("step %s done in %.1fs%s", name, elapsed, f": {detail[0]}" if detail else "")
        self._emit(StepEvent(name, "done", detail[0] if detail else "", elapsed))

    def _emit(self, event: StepEvent) -> None:
        if self.callback is not None:
            self.callback(event)


def run(
    as_of: dt.date | None = None,
    run_id: str | None = None,
    *,
    accounts: Sequence[str] | None = None,
    allow_rewind: bool = False,
    on_step: StepCallback | None = None,
) -> dict[str, Any]:
    """The whole pipeline once, in DAG order, for `accounts` (None: every staged account).
    Returns what was published and `failed` (account -> cause). `on_step` hears each phase
    start and end (StepEvent); `run_summary(as_of, run_id)` then has the table. A failure one
    account owns is contained to it (module doc); `finish` then raises AccountFailedError."""
    as_of = as_of or today()
    run_id = run_id or manual_run_id()
    steps = _Steps(on_step)
    scope = sorted(accounts) if accounts is not None else None
    failed: dict[str, str] = {}
    log.info(
        "pipeline run %s for as-of %s (%s)",
        run_id,
        as_of,
        "accounts " + ", ".join(scope) if scope is not None else "every account",
    )
    # One process runs every step: it holds the lease throughout and releases it at the end.
    with control.hold(as_of, run_id, keep=False):
        with steps.step("check_sources") as detail:
            detail.append(check_sources().summary())
        with steps.step("validate") as detail:
            plan = validate()
            failed.update(failed_definitions(plan))
            detail.append(f"{len(plan['segments'])} definitions" + _failed_note(failed))
        with steps.step("build") as detail:
            failed.update(build(as_of, run_id, scope, failed))
            detail.append(_failed_note(failed).strip("; ") or "built")
        with steps.step("cluster"):
            clusters.cluster(as_of, run_id, accounts, failed)
        with steps.step("audit") as detail:
            audit_result = audit(as_of, run_id, failed)
            failed.update(audit_result.failed_accounts)
            quarantined = len(audit_result.quarantined)
            detail.append(
                (f"{quarantined} quarantined" if quarantined else "passed") + _failed_note(failed)
            )
        with steps.step("publish") as detail:
            published = publish(
                as_of,
                run_id,
                audit_result,
                allow_rewind=allow_rewind,
                failed=failed,
                accounts=scope,
            )
            failed.update(published.failed)
            detail.append(
                f"{published.published} published, {published.quarantined} quarantined"
                + _failed_note(failed)
            )
        with steps.step("history") as detail:
            history = record_history(as_of, run_id, published.accounts)
            detail.append(f"{history['entered']} entered, {history['exited']} exited")
        with steps.step("analytics"):
            build_analytics(as_of, run_id)
        with steps.step("finish"):
            finish(audit_result, run_id, failed)
    return {
        "as_of": as_of,
        "run_id": run_id,
        "published": published,
        "history": history,
        "failed": failed,
    }


def _failed_note(failed: Mapping[str, str]) -> str:
    return f"; failed: {', '.join(sorted(failed))}" if failed else ""


@dataclass(frozen=True)
class SegmentOutcome:
    """One row of a run's summary: what one account's segment got (segments_history)."""

    account_id: str
    segment_key: str
    members: int
    entered: int
    exited: int
    quarantined: bool
    reason: str | None


def run_summary(as_of: dt.date, run_id: str) -> list[SegmentOutcome]:
    """Per account and segment, what the run of `as_of` recorded: members published (a
    quarantined one keeps its last good version), entered, exited. Read from
    segments_history.segment_sizes, so it is what history says, not what the run hoped."""
    with database.connect() as conn:
        rows = database.run_sql(
            conn, "listing.sql", "run_summary", {"as_of": as_of, "run_id": run_id}
        ).fetchall()
    return [SegmentOutcome(*row) for row in rows]


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
    query = sql.SQL(database.read_sql("status.sql")).format(
        staging=sql.Identifier(settings.SCHEMA_STAGING),
        serving=sql.Identifier(settings.SCHEMA_SERVING),
    )
    with database.connect() as conn:
        if conn.execute(
            "select to_regclass(%s) is null",
            (f"{settings.SCHEMA_STAGING}.stg_crm__accounts",),
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
    with database.connect() as conn:
        rows = conn.execute(
            f"select account_id, segment_key, member_count from {settings.SCHEMA_SERVING}.segments "
            "order by account_id, segment_key"
        ).fetchall()
    counts: dict[str, dict[str, int]] = {}
    for account, segment, members in rows:
        counts.setdefault(account, {})[segment] = members
    return counts


def _ensure_generated() -> None:
    """dbt parses the generated files: render them when segment_defs/ changed since the last
    compile (invalid definitions leave none, so staging still builds)."""
    definitions.fresh_plan()


def validate_definitions(paths: list[str] | None = None, *, offline: bool = False) -> DefinitionSet:
    """Validate segment_defs/ (or `paths`); raise DefinitionError listing every
    file:line:col error. Accounts are checked against the warehouse's accounts unless
    `offline` or the database can't be reached. Returns the validated DefinitionSet."""
    return definitions.validate(paths, offline=offline)


def render_definitions(*, offline: bool = False) -> RenderResult:
    """Compile all definitions, then write the generated dbt models
    (models/segments/generated/), the registry macro and the plan file. Returns a
    RenderResult (`.models`: model name -> Segment, `.disabled`, `.files`). Writes no
    generated file on error."""
    return definitions.compile_definitions(offline=offline)
