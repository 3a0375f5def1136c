"""Run Airflow in subprocesses with a private AIRFLOW_HOME (sqlite metadata DB in a temp dir).

Airflow reads its configuration when first imported, so every Airflow call happens in a
fresh process whose environment is set before that import. The subprocess inherits the
PG* variables of the test session, so the DAG's tasks write to the test database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
DAGS = PROJECT / "dags"
MARKER = "@@DAGRUN@@"

_DAG_TEST = f"""
import json, sys
import pendulum
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder={str(DAGS)!r})
assert not bag.import_errors, bag.import_errors
dag = bag.dags["segment_refresh"]
run = dag.test(logical_date=pendulum.parse(sys.argv[1]), run_conf=json.loads(sys.argv[2]))
states = {{ti.task_id: str(ti.state) for ti in run.get_task_instances()}}
print({MARKER!r} + json.dumps({{"state": str(run.state), "run_id": run.run_id, "tasks": states}}))
"""


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
    )
    # The session's copy of the checkout (tests/conftest.py), never the checkout itself.
    env.setdefault("SEGMENTS_PROJECT_DIR", str(PROJECT))
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run(
        [str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def python(env: dict[str, str], code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=1800
    )


def dag_test(
    env: dict[str, str], logical_date: str, conf: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run segment_refresh once with dag.test(); returns its state, run id and task states."""
    done = python(env, _DAG_TEST, logical_date, json.dumps(conf or {}))
    for line in done.stdout.splitlines():
        if line.startswith(MARKER):
            result = json.loads(line[len(MARKER) :])
            result["log"] = done.stdout + done.stderr
            return result
    raise AssertionError(
        f"dag.test did not finish (exit {done.returncode}):\n"
        f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
