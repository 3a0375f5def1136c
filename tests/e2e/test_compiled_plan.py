"""The compiled plan in a real run: the definitions are validated once per pipeline run, the
audit records the plan's hash, and publish refuses when the plan file changed after the
audit (another process recompiled changed definitions)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from pathlib import Path

import psycopg
import pytest
from _publish import fingerprint, free_lease

from segmentation.errors import CandidateChangedError, QuarantineError
from segmentation.steps import definitions, pipeline
from segmentation.warehouse import control
from segmentation_dev import demo_data

RUN_AS_OF = dt.date(2026, 11, 20)


@pytest.mark.slow
def test_a_run_validates_once_and_publish_refuses_a_plan_changed_after_the_audit(
    db: psycopg.Connection, gx_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The definitions are compiled once per run into the plan file; audit records its hash
    and publish refuses when the plan file is no longer the audited one."""
    free_lease(db)
    demo_data.load(accounts=3, contacts=450, seed=11, anchor=RUN_AS_OF)
    # Quarantined segments publish all the same; the demo data's bounds are not the point.
    with (
        caplog.at_level(logging.INFO, logger="segmentation.steps.definitions"),
        contextlib.suppress(QuarantineError),
    ):
        pipeline.run(RUN_AS_OF, "manual__once", allow_rewind=True)
    compiles = [r for r in caplog.records if r.getMessage().startswith("compiled ")]
    assert len(compiles) == 1, [r.getMessage() for r in compiles]
    plan = json.loads(definitions.plan_path().read_text())
    assert plan["segments"] and not plan["errors"]
    published = fingerprint(db)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="segmentation.steps.definitions"):
        pipeline.build(RUN_AS_OF, "manual__changed")
        result = pipeline.audit(RUN_AS_OF, "manual__changed")
    assert not [r for r in caplog.records if r.getMessage().startswith("compiled ")]
    assert result.plan_hash == plan["plan_hash"]
    # Another process recompiles changed definitions between the audit and the publish.
    changed = {**plan, "plan_hash": "0" * 64, "segments": plan["segments"][1:]}
    definitions.plan_path().write_text(json.dumps(changed))
    try:
        with pytest.raises(CandidateChangedError, match="compiled plan changed since the audit"):
            pipeline.publish(RUN_AS_OF, "manual__changed", result, allow_rewind=True)
        assert fingerprint(db) == published
    finally:
        control.release("manual__changed")
        definitions.sync_generated()
