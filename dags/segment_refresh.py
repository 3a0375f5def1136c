"""Segment refresh, each account at 08:00 in its own timezone: write (dbt) -> cluster -> audit
(Great Expectations) -> publish (one transaction per account).

The DAG runs hourly (UTC). Its first task, `due_accounts`, picks the accounts whose local
refresh hour (SEGMENTS_REFRESH_HOUR, 08:00) fell in the hour before the run, and their as-of
date (steps.schedule); when none is due the run skips its other tasks. Every other task is one
call into `segmentation.steps.pipeline`, the same functions `segments run` calls, for those
accounts and that date. See docs/operations.md for schedule, backfills, retries, quarantine
and Data Docs.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import Asset, CronTriggerTimetable, Param, dag, get_current_context, task

from segmentation.steps import airflow_support as support

# The serving schema as an Airflow Asset: a Broadcast DAG can be scheduled on it. A logical
# URI (no host, no credentials) so it stays the same in every environment.
SEGMENTS_SERVING = Asset(
    name="segments_serving",
    uri="postgres://segments-warehouse/segments/segments_serving",
    group="segments",
)


def _run_id() -> str:
    return get_current_context()["run_id"]


@dag(
    dag_id="segment_refresh",
    description="Build, audit and atomically publish customer segments for Broadcast.",
    # Hourly in UTC: each run refreshes the accounts whose local 08:00 fell in the hour
    # before it (steps.schedule), so every account runs at its own 08:00.
    schedule=CronTriggerTimetable("0 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "data-platform",
        "retries": support.retries(),
        "retry_delay": support.retry_delay(),
        "on_failure_callback": support.on_failure,
    },
    on_failure_callback=support.on_failure,
    params={
        "accounts": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Refresh only these account ids (empty: every account due in the "
            "run's hour). A manual run naming accounts refreshes them for their latest 08:00, "
            "due or not; a backfill keeps each account's own hour of each day.",
        ),
        "allow_rewind": Param(
            False,
            type="boolean",
            description="Publish an as-of date older than the one serving shows (rolls "
            "Broadcast back to that date). Off: such a run rebuilds and audits only.",
        ),
    },
    tags=["segments", "broadcast"],
    doc_md=__doc__,
)
def segment_refresh() -> None:
    @task.short_circuit
    def due_accounts() -> dict:
        """The run's scope: the accounts due in its hour and their as-of date. Empty: the
        run's other tasks are skipped (nothing is due this hour)."""
        from segmentation.steps import schedule

        context = get_current_context()
        requested = list(context["params"].get("accounts") or [])
        with support.fail_fast():
            as_of, accounts = schedule.scope(
                support.run_time(context),
                requested=requested,
                force=support.is_manual(context),
            )
        return {"as_of": as_of.isoformat(), "accounts": accounts} if accounts else {}

    @task
    def check_sources() -> None:
        from segmentation.steps import pipeline

        pipeline.check_sources()

    @task
    def validate_definitions() -> dict:
        """Accounts whose own definition files are invalid -> the cause: they are left out of
        this run (the others go on). Invalid templates fail the run."""
        from segmentation.steps import pipeline

        with support.fail_fast():
            return pipeline.failed_definitions(pipeline.validate())

    @task
    def build(scope: dict, failed: dict) -> dict:
        """dbt build for the run's accounts; returns the run's scope for the later tasks,
        with `failed` (account -> cause) grown by the accounts whose own models failed."""
        from segmentation.steps import pipeline

        as_of = dt.date.fromisoformat(scope["as_of"])
        # Takes the run lease; the run's later tasks re-enter it and `finish` releases it.
        failed = pipeline.build(as_of, _run_id(), scope["accounts"], failed)
        return {"as_of": as_of.isoformat(), "accounts": scope["accounts"], "failed": failed}

    @task
    def cluster(run: dict) -> dict:
        """k-means per account; segments reading cluster.* are rebuilt with the result."""
        from segmentation.steps import clusters

        with support.fail_fast():
            result = clusters.cluster(
                dt.date.fromisoformat(run["as_of"]), _run_id(), run["accounts"], run["failed"]
            )
        return {a.account_id: a.status for a in result.accounts}

    @task
    def audit(run: dict) -> dict:
        from segmentation.steps import pipeline

        with support.fail_fast():
            return pipeline.audit(
                dt.date.fromisoformat(run["as_of"]), _run_id(), run["failed"]
            ).to_dict()

    @task(outlets=[SEGMENTS_SERVING])
    def publish(run: dict, audit_result: dict) -> dict:
        from segmentation.steps import pipeline
        from segmentation.steps.audit import AuditResult

        # A backfill publishes older dates on purpose: history is rewritten from that date.
        allow_rewind = support.allow_rewind(get_current_context())
        with support.fail_fast():
            result = pipeline.publish(
                dt.date.fromisoformat(run["as_of"]),
                _run_id(),
                AuditResult.from_dict(audit_result),
                allow_rewind=allow_rewind,
                failed=run["failed"],
                accounts=run["accounts"],
            )
        return {
            "published": result.published,
            "quarantined": result.quarantined,
            "status": result.status,
            "counts": result.counts,
            "accounts": result.accounts,
            "failed": result.failed,  # account -> cause (JSON-safe)
        }

    @task
    def record_history(run: dict, published: dict) -> dict:
        from segmentation.steps import pipeline

        with support.fail_fast():
            summary = pipeline.record_history(
                dt.date.fromisoformat(run["as_of"]), _run_id(), published["accounts"]
            )
        summary.pop("accounts", None)  # per-account detail: in the task log
        return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in summary.items()}

    @task
    def analytics(run: dict) -> None:
        """The performance marts, from the history record_history just wrote."""
        from segmentation.steps import pipeline

        with support.fail_fast():
            pipeline.build_analytics(dt.date.fromisoformat(run["as_of"]), _run_id())

    @task
    def finish(run: dict, audit_result: dict, published: dict) -> None:
        """Ends the run failed when segments were quarantined or accounts failed (after the
        others published and history ran), naming each account and its cause."""
        from segmentation.steps import pipeline
        from segmentation.steps.audit import AuditResult

        with support.fail_fast():
            pipeline.finish(
                AuditResult.from_dict(audit_result),
                _run_id(),
                {**run["failed"], **published["failed"]},
            )

    @task
    def report() -> str:
        """The HTML report (steps.report), beside `finish` after history: a report error fails
        the run loudly, but only once serving and history are complete, and it never keeps
        `finish` from releasing the lease or reporting quarantine."""
        from segmentation.steps import report as report_step

        return str(report_step.build_report())

    scope = due_accounts()
    checked = check_sources()
    failed = validate_definitions()
    scope >> checked >> failed
    built = build(scope, failed)
    audited = audit(built)
    cluster(built) >> audited
    published = publish(built, audited)
    history = record_history(built, published)
    # analytics still holds the run's lease, which finish releases; the report reads the marts.
    published >> history >> analytics(built) >> [report(), finish(built, audited, published)]


dag_object = segment_refresh()
