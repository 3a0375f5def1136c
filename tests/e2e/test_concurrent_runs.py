"""Two real `segments run` processes never interleave (issue 8, H2 lock): the second is
refused while the first holds the run lease; a manual dbt build between a run's audit and
its publish is refused; recovery is an ordinary rerun. The lease itself, on fixture tables,
is tested in tests/warehouse/test_security_integrity.py."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import psycopg
import pytest
from _publish import fingerprint, free_lease, segments_run, wait_for_build
from psycopg import sql

from segmentation.errors import PublishError
from segmentation.steps import pipeline
from segmentation_dev import demo_data

# publish_log has a row per account per publish (serving contract 2): the runs that published.
PUBLISHES = (
    "select run_id from segments_serving.publish_log group by run_id order by min(publish_id)"
)

# --- two real runs --------------------------------------------------------------------------

RUN_AS_OF = dt.date(2026, 11, 20)


def _run(run_id: str) -> subprocess.Popen[str]:
    return segments_run(RUN_AS_OF, run_id)


@pytest.mark.slow
def test_two_real_runs_never_interleave_and_a_manual_build_is_not_published(
    db: psycopg.Connection, gx_dir: Path
) -> None:
    free_lease(db)
    for name in ("segment_catalogue", "segment_memberships", "segment_group_assignments"):
        db.execute(
            sql.SQL("drop table if exists {}").format(sql.Identifier("segments_audit", name))
        )
    db.execute("drop table if exists segments_staging.stg_crm__contacts")
    demo_data.load(accounts=3, contacts=450, seed=11, anchor=RUN_AS_OF)

    first = _run("manual__first")
    wait_for_build(db, first)
    second = _run("manual__second")
    out_second, _ = second.communicate(timeout=600)
    out_first, _ = first.communicate(timeout=1200)

    assert second.returncode == 1, out_second[-3000:]
    assert "Another pipeline run is using the candidate: run manual__first" in out_second
    assert first.returncode == 0 or "quarantined" in out_first, out_first[-4000:]
    runs = [r[0] for r in db.execute(PUBLISHES)]
    assert runs == ["manual__first"]
    published = fingerprint(db)

    # A build outside the pipeline's lease (a manual `dbt build` for another date) lands
    # between the audit and the publish of a run: the publish refuses, naming what changed.
    pipeline.build(RUN_AS_OF, "manual__third")
    result = pipeline.audit(RUN_AS_OF, "manual__third")
    from segmentation.warehouse.dbt_runner import run_dbt

    run_dbt(["build", "--exclude", pipeline.BUILD_EXCLUDE], {"as_of": "2027-06-30"})
    with pytest.raises(PublishError) as caught:
        pipeline.publish(RUN_AS_OF, "manual__third", result)
    assert "as-of date: audited 2026-11-20, now 2027-06-30" in str(caught.value)
    assert fingerprint(db) == published
    held = db.execute("select run_id from segments_control.run_lease").fetchone()
    assert held == (None,)  # the failed step released the lease

    # Recovery is an ordinary rerun.
    rerun = _run("manual__rerun")
    out_rerun, _ = rerun.communicate(timeout=1200)
    assert rerun.returncode == 0 or "quarantined" in out_rerun, out_rerun[-4000:]
    runs = [r[0] for r in db.execute(PUBLISHES)]
    assert runs == ["manual__first", "manual__rerun"]
