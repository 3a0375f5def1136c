"""Daily segment refresh: write (dbt) -> cluster -> audit (Great Expectations) -> publish (one
transaction).

Every task is one call into `segmentation.steps.pipeline`, the same functions `segments run` calls.
See docs/operations.md for schedule, backfills, retries, quarantine and Data Docs.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import Asset, CronTriggerTimetable, Param, dag, get_current_context, task

from segmentation import settings
from segmentation.steps import airflow_support as support

TIMEZONE = pendulum.timezone(settings.timezone())

# The serving schema as an Airflow Asset: a Broadcast DAG can be scheduled on it. A logical
# URI (no host, no credentials) so it stays the same in every environment.
SEGMENTS_SERVING = Asset(
    name="segments_serving",
    uri="postgres://segments-warehouse/segments/segments_serving",
    group="segments",
)


def _as_of() -> dt.date:
    return support.as_of_from_context(get_current_context(), settings.timezone())


def _run_id() -> str:
    return get_current_context()["run_id"]


@dag(
    dag_id="segment_refresh",
    description="Build, audit and atomically publish customer segments for Broadcast.",
    schedule=CronTriggerTimetable("0 8 * * *", timezone=TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
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
    @task
    def check_sources() -> None:
        from segmentation.steps import pipeline

        pipeline.check_sources()

    @task
    def validate_definitions() -> None:
        from segmentation.steps import pipeline

        with support.fail_fast():
            pipeline.validate()

    @task
    def build() -> str:
        from segmentation.steps import pipeline

        as_of = _as_of()
        # Takes the run lease; the run's later tasks re-enter it and `finish` releases it.
        pipeline.build(as_of, _run_id())
        return as_of.isoformat()

    @task
    def cluster(as_of: str) -> dict:
        """k-means per account; segments reading cluster.* are rebuilt with the result."""
        from segmentation.steps import clusters

        with support.fail_fast():
            result = clusters.cluster(dt.date.fromisoformat(as_of), _run_id())
        return {a.account_id: a.status for a in result.accounts}

    @task
    def audit(as_of: str) -> dict:
        from segmentation.steps import pipeline

        with support.fail_fast():
            return pipeline.audit(dt.date.fromisoformat(as_of), _run_id()).to_dict()

    @task(outlets=[SEGMENTS_SERVING])
    def publish(as_of: str, audit_result: dict) -> dict:
        from segmentation.steps import pipeline
        from segmentation.steps.audit import AuditResult

        allow_rewind = bool(get_current_context()["params"].get("allow_rewind"))
        with support.fail_fast():
            result = pipeline.publish(
                dt.date.fromisoformat(as_of),
                _run_id(),
                AuditResult.from_dict(audit_result),
                allow_rewind=allow_rewind,
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
    def record_history(as_of: str, published: dict) -> dict:
        from segmentation.steps import pipeline

        with support.fail_fast():
            summary = pipeline.record_history(
                dt.date.fromisoformat(as_of), _run_id(), published.get("accounts")
            )
        summary.pop("accounts", None)  # per-account detail: in the task log
        return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in summary.items()}

    @task
    def analytics(as_of: str) -> None:
        """The performance marts, from the history record_history just wrote."""
        from segmentation.steps import pipeline

        with support.fail_fast():
            pipeline.build_analytics(dt.date.fromisoformat(as_of), _run_id())

    @task
    def finish(audit_result: dict, published: dict) -> None:
        """Ends the run failed when an account failed or segments were quarantined (after
        publish and history of the others)."""
        from segmentation.steps import pipeline
        from segmentation.steps.audit import AuditResult

        with support.fail_fast():
            pipeline.finish(AuditResult.from_dict(audit_result), _run_id(), published.get("failed"))

    @task
    def report() -> str:
        """The HTML report (steps.report), beside `finish` after history: a report error fails
        the run loudly, but only once serving and history are complete, and it never keeps
        `finish` from releasing the lease or reporting quarantine."""
        from segmentation.steps import report as report_step

        return str(report_step.build_report())

    as_of = build()
    check_sources() >> validate_definitions() >> as_of
    audited = audit(as_of)
    cluster(as_of) >> audited
    published = publish(as_of, audited)
    history = record_history(as_of, published)
    # analytics still holds the run's lease, which finish releases; the report reads the marts.
    published >> history >> analytics(as_of) >> [report(), finish(audited, published)]


dag_object = segment_refresh()
