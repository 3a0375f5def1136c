"""One pipeline step in a process of its own, for `make bench` (segmentation_dev.bench_scale).

The DAG runs each task in its own process, so the bench does too: the parent measures this
process's wall time and peak RSS (os.wait4), and this process prints one JSON line with the
step's own duration and outcome. The audit result travels between processes as a JSON file,
as it travels between DAG tasks as XCom.

    python -m segmentation_dev.bench_step STEP AS_OF RUN_ID [STATE_FILE] [TARGET]
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _audit_file(state: str) -> Path:
    return Path(state)


def _staging(as_of: dt.date, run_id: str, state: str, target: str) -> Any:
    from segmentation.steps import pipeline

    pipeline.build_staging(as_of)
    return None


def _refresh(as_of: dt.date, run_id: str, state: str, target: str) -> Any:
    """The segment layer as the pipeline builds it (features, segments, marts, groups),
    over staging that is already built: every model `build` runs but staging's."""
    from segmentation.steps import pipeline
    from segmentation.steps.selection import BUILD_EXCLUDE
    from segmentation.warehouse.dbt_runner import run_dbt

    exclude = f"staging int_crm__rejected_rows {BUILD_EXCLUDE}"
    res = run_dbt(["run", "--exclude", exclude], pipeline.dbt_vars(as_of))
    return {"models": len(res.result.results)}


def _check_sources(as_of: dt.date, run_id: str, state: str, target: str) -> Any:
    from segmentation.steps import definitions, pipeline

    pipeline.check_sources()
    plan = definitions.read_plan() or {"errors": ["no plan written"], "segments": []}
    if plan["errors"]:
        # A bench over definitions that did not compile would measure nothing.
        raise SystemExit(
            "the bench definitions do not compile:\n"
            + "\n".join(str(e) for e in plan["errors"][:10])
        )
    return {"segments": len(plan["segments"])}


def _build(as_of: dt.date, run_id: str, state: str, target: str) -> Any:
    from segmentation.steps import pipeline

    pipeline.build(as_of, run_id)
    return None


def _cluster(as_of: dt.date, run_id: str, state: str, target: str) -> Any:
    from segmentation.steps import clusters

    clusters.cluster(as_of, run_id)
    return None


def _audit(as_of: dt.date, run_id: str, state: str, target: str) -> Any:
    from segmentation.steps import pipeline

    result = pipeline.audit(as_of, run_id)
    _audit_file(state).write_text(json.dumps(result.to_dict()))
    return {"quarantined": len(result.quarantined)}


def _publish(as_of: dt.date, run_id: str, state: str, target: str) -> Any:
    from segmentation.steps import pipeline
    from segmentation.steps.audit import AuditResult

    audit = AuditResult.from_dict(json.loads(_audit_file(state).read_text()))
    result = pipeline.publish(as_of, run_id, audit)
    return {"published": result.published}


def _history(as_of: dt.date, run_id: str, state: str, target: str) -> Any:
    from segmentation.steps import pipeline

    result = pipeline.record_history(as_of, run_id)
    return {"entered": result.get("entered"), "exited": result.get("exited")}


def _analytics(as_of: dt.date, run_id: str, state: str, target: str) -> Any:
    from segmentation.steps import pipeline

    pipeline.build_analytics(as_of, run_id)
    return None


def _finish(as_of: dt.date, run_id: str, state: str, target: str) -> Any:
    from segmentation.errors import QuarantineError
    from segmentation.steps import pipeline
    from segmentation.steps.audit import AuditResult

    audit = AuditResult.from_dict(json.loads(_audit_file(state).read_text()))
    try:
        pipeline.finish(audit, run_id)
    except QuarantineError:
        # The run ends failed by design when a segment was quarantined (the generated
        # definitions trip max_change_pct on a day's changes); the timing still counts.
        return {"quarantined": len(audit.quarantined)}
    return None


def _preview(as_of: dt.date, run_id: str, state: str, target: str) -> Any:
    from segmentation.steps import preview

    return {"members": preview.preview(target, as_of=as_of.isoformat(), limit=20).members}


STEPS: dict[str, Callable[[dt.date, str, str, str], Any]] = {
    "check_sources": _check_sources,
    "staging": _staging,
    "refresh": _refresh,
    "build": _build,
    "cluster": _cluster,
    "audit": _audit,
    "publish": _publish,
    "history": _history,
    "analytics": _analytics,
    "finish": _finish,
    "preview": _preview,
}


def main(argv: list[str]) -> int:
    step, as_of, run_id, *rest = argv
    state = rest[0] if rest else ""
    target = rest[1] if len(rest) > 1 else ""
    started = time.perf_counter()
    outcome = STEPS[step](dt.date.fromisoformat(as_of), run_id, state, target)
    seconds = time.perf_counter() - started
    # The last line of stdout is the parent's to read (dbt logs go to its log file).
    sys.stdout.write("\n" + json.dumps({"step": step, "seconds": seconds, "outcome": outcome}))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
