"""The segment layer built both ways (dbt var segment_strategy) on one data set, timed.

    python -m segmentation_dev.strategy_timing --accounts 5 --contacts 100000 --seed 7

Loads the demo data into a scratch database (kept with --keep, reused with --reuse), copies
the dbt project with the shipped definitions plus the 200 generated ones (bench_defs) to a
temporary folder, builds everything the segments read once, then runs the segment layer
(tag:segment, tag:segment_pass, segment_memberships) per strategy, after a `dbt parse` with
the same vars so the parse is not in the figure. Prints wall seconds, the summed model
seconds from run_results.json and the membership rows (which must agree). A benchmark, not
a test: the figures go into docs, never into assertions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from segmentation import settings
from segmentation.steps import definitions
from segmentation.warehouse import bootstrap, database
from segmentation.warehouse.dbt_runner import run_dbt, target_dir
from segmentation_dev import bench_defs, demo_data

AS_OF = dt.date(2026, 11, 22)
LAYER = ["tag:segment", "tag:segment_pass", "segment_memberships"]
PROJECT_FILES = ("dbt_project.yml", "profiles.example.yml")
PROJECT_DIRS = ("macros", "models", "seeds", "segment_defs")


def _copy_project(target: Path) -> Path:
    source = settings.project_dir()
    ignore = shutil.ignore_patterns("generated", "__pycache__")
    for name in PROJECT_FILES:
        shutil.copy(source / name, target / name)
    for name in PROJECT_DIRS:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, ignore=ignore)
    bench_defs.write(target / "segment_defs")
    return target


def _run(strategy: str) -> dict[str, Any]:
    dbt_vars = {"as_of": AS_OF.isoformat(), "segment_strategy": strategy}
    run_dbt(["parse", "--quiet"], dbt_vars)
    start = time.perf_counter()
    run_dbt(["run", "--select", *LAYER, "--quiet"], dbt_vars)
    wall = time.perf_counter() - start
    results = json.loads((target_dir() / "run_results.json").read_text())["results"]
    with database.connect() as conn:
        rows = conn.execute("select count(*) from segments_audit.segment_memberships").fetchone()
    slowest = sorted(results, key=lambda r: -r["execution_time"])[:6]
    return {
        "slowest": {
            r["unique_id"].rsplit(".", 1)[-1]: round(r["execution_time"], 1) for r in slowest
        },
        "wall_s": round(wall, 2),
        "model_s": round(sum(r["execution_time"] for r in results), 2),
        "models": len(results),
        "membership_rows": rows[0] if rows else 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=5)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--strategies", nargs="+", default=["per_segment", "one_pass"])
    parser.add_argument("--dbname", default="segments_strategy_timing")
    parser.add_argument(
        "--reuse", action="store_true", help="the database is loaded and the inputs built"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    os.environ["PGDATABASE"] = args.dbname
    with tempfile.TemporaryDirectory(prefix="strategy_timing_") as tmp:
        project = _copy_project(Path(tmp))
        # the scratch copy for this process and the dbt it starts (read via settings)
        os.environ.update(SEGMENTS_PROJECT_DIR=str(project))
        os.environ["DBT_TARGET_PATH"] = str(project / "target")
        os.environ["DBT_LOG_PATH"] = str(project / "logs")
        if not args.reuse:
            database.drop_database(args.dbname)
            database.create_database(args.dbname)
            bootstrap.init_db()
            start = time.perf_counter()
            demo_data.load(args.accounts, args.contacts, args.seed, AS_OF, args.dbname)
            print(f"demo data loaded in {time.perf_counter() - start:.1f} s", flush=True)
        definitions.compile_definitions()
        if not args.reuse:
            start = time.perf_counter()
            run_dbt(
                ["run", "--select", "+segment_memberships", "--exclude", *LAYER, "--quiet"],
                {"as_of": AS_OF.isoformat()},
            )
            print(f"inputs of the segment layer built in {time.perf_counter() - start:.1f} s")
        found: dict[str, list[dict[str, Any]]] = {s: [] for s in args.strategies}
        for _ in range(args.repeat):
            for strategy in found:
                found[strategy].append(_run(strategy))
                print(strategy, found[strategy][-1], flush=True)
        summary = {
            s: {
                "wall_s_median": statistics.median(r["wall_s"] for r in runs),
                "model_s_median": statistics.median(r["model_s"] for r in runs),
                "models": runs[0]["models"],
                "membership_rows": runs[0]["membership_rows"],
            }
            for s, runs in found.items()
        }
        print(json.dumps(summary, indent=1))
    if not args.keep:
        database.drop_database(args.dbname)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
