"""Issue 10's figures: 200 generated segments over the scale data set, against the floor.

One scale database per data set (`segments_bench_a<accounts>_c<contacts>_s<seed>`, reused
when present: only the pipeline's schemas are reset), and two copies of the project under
`.local/bench/`: the shipped definitions plus the 200 generated ones
(segmentation_dev.bench_defs), and plus only the first 20. Every pipeline step runs in a
process of its own, as the DAG runs its tasks, so each has its own wall time and peak RSS.

Order: staging, refresh_200, floor_scan, floor_write, audit, publish_first (empty serving),
history_first; then daily runs (each the next day, about 1% of the contacts changed):
dag_daily with publish_daily and history_daily, and the statement profile of those days
(segmentation_dev.bench_profile: pg_stat_activity sampled every 5 s); preview_1; then, in
the 20-definition copy, refresh_20 and naive_20 (the same 20 segments as independent queries with
correlated subqueries, from templates/bench_naive.sql), whose members must equal the
pipeline's. naive_200 is naive_20 times 10: extrapolated, and labelled so.

A figure under a minute is the median of 3 runs; a longer one is measured once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from psycopg import sql

from segmentation import settings
from segmentation.compiler.literals import jinja_string
from segmentation.compiler.preview import segment_features
from segmentation.language.activity import OBJECTS
from segmentation.warehouse import bootstrap, database
from segmentation.warehouse.dbt_runner import run_dbt
from segmentation_dev import bench_profile, demo_data

SQL = "bench.sql"
REPEAT_UNDER_SECONDS = 60.0
REPEATS = 3
NAIVE_TEMPLATE = Path(__file__).with_name("templates") / "bench_naive.sql"
# What the project copies hold (the rest of the checkout is not dbt's).
PROJECT_FILES = ("dbt_project.yml", "profiles.example.yml")
PROJECT_DIRS = ("models", "macros", "seeds", "segment_defs", "expectations", "analyses", "tests")
FLOOR = ("floor_scan", "floor_write")
# The ratios of issue 10: (name, numerator, denominators summed, goal text, passes).
RATIOS: tuple[tuple[str, str, tuple[str, ...], str, Callable[[float], bool]], ...] = (
    (
        "refresh_200 / (floor_scan + floor_write)",
        "refresh_200",
        FLOOR,
        "<= 1.5",
        lambda r: r <= 1.5,
    ),
    ("naive_200 / refresh_200", "naive_200", ("refresh_200",), ">= 25", lambda r: r >= 25),
    ("refresh_200 / refresh_20", "refresh_200", ("refresh_20",), "<= 3", lambda r: r <= 3),
    ("dag_daily / (floor_scan + floor_write)", "dag_daily", FLOOR, "<= 4", lambda r: r <= 4),
)
RSS_GOAL_MIB = 1024.0


@dataclass
class Figure:
    name: str
    seconds: float
    runs: list[float] = field(default_factory=list)
    peak_rss_mib: float | None = None
    note: str = ""


@dataclass
class StepRun:
    step: str
    wall: float
    inner: float
    peak_rss_mib: float
    outcome: Any


@dataclass
class Scale:
    accounts: int
    contacts: int
    seed: int
    as_of: dt.date
    days: int  # daily runs after the first publish (medians over them)
    target: str  # the segment preview_1 previews

    @property
    def dbname(self) -> str:
        return f"segments_bench_a{self.accounts}_c{self.contacts}_s{self.seed}"


class Bench:
    def __init__(self, scale: Scale, workdir: Path) -> None:
        self.scale = scale
        self.workdir = workdir
        self.figures: dict[str, Figure] = {}
        self.processes: list[StepRun] = []
        self.notes: list[str] = []
        self.dataset: dict[str, Any] = {}
        self.details: dict[str, Any] = {}

    # --- environment --------------------------------------------------------------------

    def env(self, project: Path) -> dict[str, str]:
        local = project / ".local"
        return {
            **os.environ,
            "PGDATABASE": self.scale.dbname,
            "SEGMENTS_PROJECT_DIR": str(project),
            "DBT_TARGET_PATH": str(local / "target"),
            "DBT_LOG_PATH": str(local / "logs"),
        }

    @contextmanager
    def in_project(self, project: Path) -> Iterator[None]:
        """This process's environment pointed at `project` and the scale database."""
        keys = ("PGDATABASE", "SEGMENTS_PROJECT_DIR", "DBT_TARGET_PATH", "DBT_LOG_PATH")
        old = {k: os.environ.get(k) for k in keys}
        os.environ.update({k: v for k, v in self.env(project).items() if k in keys})
        try:
            yield
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def step(
        self, project: Path, step: str, as_of: dt.date, run_id: str, target: str = ""
    ) -> StepRun:
        """Run one pipeline step in its own process: its wall time and peak RSS."""
        state = str(project / ".local" / f"audit-{run_id}.json")
        argv = [
            sys.executable,
            "-m",
            "segmentation_dev.bench_step",
            step,
            as_of.isoformat(),
            run_id,
            state,
            target,
        ]
        log_file = project / ".local" / "bench-steps.log"
        started = time.perf_counter()
        with (
            open(log_file, "ab") as err,
            subprocess.Popen(
                argv, env=self.env(project), stdout=subprocess.PIPE, stderr=err
            ) as proc,
        ):
            out = proc.stdout.read() if proc.stdout else b""
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"bench step {step} ({as_of}, {run_id}) failed: see {log_file}")
        report = json.loads(out.decode().strip().splitlines()[-1])
        run = StepRun(step, wall, report["seconds"], usage.ru_maxrss / 1024, report["outcome"])
        self.processes.append(run)
        return run

    # --- measuring ----------------------------------------------------------------------

    def timed(self, name: str, once: Callable[[], float | StepRun], note: str = "") -> Figure:
        """Median of REPEATS runs when the first took under a minute, else that one run."""
        runs: list[float] = []
        peak: float | None = None
        while True:
            result = once()
            if isinstance(result, StepRun):
                runs.append(result.wall)
                peak = max(peak or 0.0, result.peak_rss_mib)
            else:
                runs.append(result)
            if len(runs) >= REPEATS or runs[0] >= REPEAT_UNDER_SECONDS:
                break
        fig = Figure(name, statistics.median(runs), runs, peak, note)
        self.figures[name] = fig
        print(
            f"  {name:<16} {fig.seconds:9.2f} s  runs {', '.join(f'{r:.1f}' for r in runs)}",
            flush=True,
        )
        return fig

    def sql_seconds(self, query: str, **relations: sql.Composable) -> float:
        started = time.perf_counter()
        with database.connect(self.scale.dbname, autocommit=True) as conn:
            database.run_sql(conn, SQL, query, **relations)
        return time.perf_counter() - started

    # --- the data set and the projects --------------------------------------------------

    def prepare_dataset(self) -> None:
        s = self.scale
        database.create_database(s.dbname)
        with database.connect(s.dbname, autocommit=True) as conn:
            found = database.run_sql(conn, SQL, "dataset").fetchall()
        want = (s.accounts, s.contacts, s.seed, s.as_of)
        if found and tuple(found[0][:4]) == want:
            self.dataset = {"reused": True, "load_seconds": found[0][4]}
            print(f"reusing the data set in {s.dbname}", flush=True)
        else:
            print(
                f"loading {s.contacts:,} contacts x {s.accounts} accounts into {s.dbname}",
                flush=True,
            )
            started = time.perf_counter()
            counts = demo_data.load(s.accounts, s.contacts, s.seed, anchor=s.as_of, dbname=s.dbname)
            seconds = time.perf_counter() - started
            with database.transaction(s.dbname) as conn:
                params = {
                    "accounts": s.accounts,
                    "n_contacts": s.contacts,
                    "seed": s.seed,
                    "as_of": s.as_of,
                    "seconds": seconds,
                }
                database.run_sql(conn, SQL, "record_dataset", params)
            self.dataset = {"reused": False, "load_seconds": seconds, "raw_rows": counts}
        with database.transaction(s.dbname) as conn:
            database.run_sql(conn, SQL, "reset_pipeline")
        bootstrap.init_db(s.dbname)

    def make_project(self, name: str, defs: list[tuple[str, str]]) -> Path:
        """A copy of the project (no generated files) with `defs` added to segment_defs/."""
        source = settings.project_dir()
        target = self.workdir / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        ignore = shutil.ignore_patterns("generated", "__pycache__", "uncommitted")
        for f in PROJECT_FILES:
            shutil.copy(source / f, target / f)
        for d in PROJECT_DIRS:
            if (source / d).is_dir():
                shutil.copytree(source / d, target / d, ignore=ignore)
        for rel, text in defs:
            path = target / "segment_defs" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (target / "macros" / "bench").mkdir(parents=True, exist_ok=True)
        shutil.copy(NAIVE_TEMPLATE, target / "macros" / "bench" / NAIVE_TEMPLATE.name)
        (target / ".local").mkdir(exist_ok=True)
        return target

    # --- the figures --------------------------------------------------------------------

    def first_day(self, project: Path) -> None:
        as_of, run = self.scale.as_of, "bench__day0"
        self.step(project, "check_sources", as_of, run)
        self.timed(
            "staging",
            lambda: self.step(project, "staging", as_of, run),
            "dbt build of staging and int_crm__rejected_rows (models and tests)",
        )
        self.details["staging_models"] = self.model_timings(project)
        self.timed(
            "refresh_200",
            lambda: self.step(project, "refresh", as_of, run),
            "dbt run of the segment layer: every model of build but staging",
        )
        self.details["refresh_200_models"] = self.model_timings(project)
        with database.connect(self.scale.dbname) as conn:
            tables = [
                r[0]
                for r in database.run_sql(
                    conn, SQL, "staged_tables", {"schema": settings.SCHEMA_STAGING}
                )
            ]
            rows = database.run_sql(conn, SQL, "membership_rows").fetchone()[0]
        self.details["membership_rows"] = rows
        self.details["staged_tables"] = tables

        def scan() -> float:
            return sum(
                self.sql_seconds("scan", bench_table=sql.Identifier(settings.SCHEMA_STAGING, t))
                for t in tables
            )

        self.timed("floor_scan", scan, f"count(*) of the {len(tables)} staged tables")
        self.timed(
            "floor_write",
            lambda: self.sql_seconds("floor_write"),
            f"create table as select of the {rows:,} membership rows",
        )
        self.sql_seconds("drop_floor_write")
        self.timed(
            "audit",
            lambda: self.step(project, "audit", as_of, run),
            "GX checkpoint and the audit_* tables",
        )

        def publish_first() -> StepRun:
            self.empty_serving()
            return self.step(project, "publish", as_of, run)

        self.timed("publish_first", publish_first, "into an empty serving schema")
        self.timed(
            "history_first",
            lambda: self.step(project, "history", as_of, run),
            "the first recorded date",
        )
        self.step(project, "finish", as_of, run)

    def empty_serving(self) -> None:
        """Serving and history as a fresh install has them: dropped and created again by
        `segments db init`. (Truncating instead leaves the planner sure the tables are
        empty, and the publish's anti-joins then take a nested loop that rescans the table
        being filled: a third repeat of publish_first took 559 s instead of 35 s.)"""
        with database.transaction(self.scale.dbname) as conn:
            database.run_sql(conn, SQL, "drop_serving")
        bootstrap.init_db(self.scale.dbname)

    def daily(self, project: Path) -> dt.date:
        """The next days' runs, every DAG task in its own process."""
        dag = (
            "check_sources",
            "build",
            "cluster",
            "audit",
            "publish",
            "history",
            "analytics",
            "finish",
        )
        per_day: dict[str, list[float]] = {name: [] for name in (*dag, "dag_daily")}
        peaks: dict[str, float] = {}
        as_of = self.scale.as_of
        with bench_profile.StatementSampler(self.scale.dbname) as sampler:
            for day in range(1, self.scale.days + 1):
                as_of = self.scale.as_of + dt.timedelta(days=day)
                sampler.label = "elt load"
                self.touch_contacts(as_of, day)
                run = f"bench__day{day}"
                total = 0.0
                for name in dag:
                    sampler.label = name
                    done = self.step(project, name, as_of, run)
                    per_day[name].append(done.wall)
                    peaks[name] = max(peaks.get(name, 0.0), done.peak_rss_mib)
                    total += done.wall
                per_day["dag_daily"].append(total)
                print(f"  day {day} ({as_of}): dag {total:.1f} s", flush=True)
                if total >= REPEAT_UNDER_SECONDS:
                    break
        profile = sampler.profile()
        self.details["daily_statement_profile"] = profile
        for name in dag:
            for row in profile.get(name, [])[:3]:
                line = f"    {name:<13} {row['seconds']:6.0f} s  {row['statement'][:90]}"
                print(line, flush=True)
        for figure, step in (
            ("publish_daily", "publish"),
            ("history_daily", "history"),
            ("dag_daily", "dag_daily"),
        ):
            runs = per_day[step]
            self.figures[figure] = Figure(
                figure,
                statistics.median(runs),
                runs,
                peaks.get(step, max(peaks.values())),
                "next day, about 1% of the contacts changed"
                + ("; every DAG task in its own process" if step == "dag_daily" else ""),
            )
        self.details["daily_steps"] = {k: v for k, v in per_day.items()}
        return as_of

    def touch_contacts(self, as_of: dt.date, day: int) -> None:
        loaded = dt.datetime.combine(as_of, dt.time(1), dt.UTC)
        with database.transaction(self.scale.dbname) as conn:
            cur = database.run_sql(
                conn, SQL, "touch_contacts", {"salt": f"day{day}", "loaded_at": loaded}
            )
            self.details.setdefault("changed_contacts", []).append(cur.rowcount)
            database.run_sql(conn, SQL, "analyze_contacts")

    def preview(self, project: Path, as_of: dt.date) -> None:
        self.timed(
            "preview_1",
            lambda: self.step(project, "preview", as_of, "bench__preview", self.scale.target),
            f"segments preview {self.scale.target}",
        )

    def twenty(self, project: Path, as_of: dt.date, keys: list[str]) -> None:
        run = "bench__twenty"
        self.step(project, "check_sources", as_of, run)
        self.timed(
            "refresh_20",
            lambda: self.step(project, "refresh", as_of, run),
            "as refresh_200, with the shipped definitions and the first 20 generated",
        )
        with self.in_project(project):
            queries = self.naive_queries(keys)
            self.index_activity()
            with database.connect(self.scale.dbname, autocommit=True) as conn:
                expected = {
                    (a, k): n
                    for a, k, n in database.run_sql(conn, SQL, "members_per_segment")
                    if k in queries
                }
        found: dict[tuple[str, str], int] = {}
        per_query: dict[str, list[float]] = {}

        def naive() -> float:
            total = 0.0
            with database.connect(self.scale.dbname, autocommit=True) as conn:
                for key, query in queries.items():
                    started = time.perf_counter()
                    rows = conn.execute(
                        f"select account_id, count(*) from ({query}) as q group by account_id"
                    ).fetchall()
                    seconds = time.perf_counter() - started
                    per_query.setdefault(key, []).append(seconds)
                    total += seconds
                    found.update({(a, key): n for a, n in rows})
            return total

        self.timed(
            "naive_20",
            naive,
            "20 independent queries, correlated lateral aggregates "
            "over activity tables indexed on (account_id, contact_id)",
        )
        if found != expected:
            diff = {
                k: (found.get(k), expected.get(k))
                for k in set(found) | set(expected)
                if found.get(k) != expected.get(k)
            }
            raise SystemExit(f"naive_20 and the pipeline disagree (naive, pipeline): {diff}")
        self.details["naive_20_queries"] = {k: statistics.median(v) for k, v in per_query.items()}
        n20 = self.figures["naive_20"]
        self.figures["naive_200"] = Figure(
            "naive_200",
            n20.seconds * 10,
            [],
            None,
            "EXTRAPOLATED: naive_20 x 10 (not measured)",
        )

    def naive_queries(self, keys: list[str]) -> dict[str, str]:
        """The naive SQL of each bench segment, rendered by dbt from templates/bench_naive.sql."""
        from segmentation.steps import definitions

        rendered = definitions.compile_definitions()
        calls = []
        for model, seg in rendered.models.items():
            if seg.key in keys and seg.is_template:
                args = (jinja_string(rendered.payloads[model]), jinja_string(segment_features(seg)))
                calls.append(
                    (
                        seg.key,
                        "{{{{ bench_naive_segment(fromjson({}), fromjson({})) }}}}".format(*args),
                    )
                )
        # One dbt invocation renders all of them (a parse each would cost more than the
        # queries); a comment line that no rendered SQL holds separates them.
        split = "-- bench_naive: next segment"
        res = run_dbt(
            ["compile", "--inline", f"\n{split}\n".join(c for _, c in calls), "--log-level", "none"]
        )
        code = next(r.node.compiled_code for r in res.result.results)
        queries = dict(zip([k for k, _ in calls], code.split(split), strict=True))
        return queries

    def index_activity(self) -> None:
        with database.connect(self.scale.dbname, autocommit=True) as conn:
            for obj in OBJECTS.values():
                table = sql.Identifier(settings.SCHEMA_STAGING, obj.model)
                query = "index_companies" if obj.via_link else "index_activity"
                database.run_sql(conn, SQL, query, bench_table=table)
                database.run_sql(conn, SQL, "analyze_table", bench_table=table)
            links = sql.Identifier(settings.SCHEMA_STAGING, "stg_crm__contact_companies")
            database.run_sql(conn, SQL, "index_activity", bench_table=links)
            database.run_sql(conn, SQL, "analyze_table", bench_table=links)

    def explain(self, project: Path, out: Path | None, top: int = 2) -> None:
        """EXPLAIN (ANALYZE, BUFFERS) of the slowest models of staging and of the segment
        layer (their compiled SQL, from dbt's compiled/ folder), into `out`."""
        if out is None:
            return
        compiled = project / ".local" / "target" / "compiled"
        chosen = [
            *list(self.details.get("staging_models", {}))[:top],
            *list(self.details.get("refresh_200_models", {}))[:top],
        ]
        parts = []
        with database.connect(self.scale.dbname, autocommit=True) as conn:
            for model in chosen:
                found = sorted(compiled.rglob(f"{model}.sql"))
                if not found:
                    continue
                query = found[0].read_text()
                plan = conn.execute(f"explain (analyze, buffers) {query}").fetchall()
                parts.append(f"-- {model}\n" + "\n".join(r[0] for r in plan))
        out.write_text("\n\n".join(parts) + "\n")
        print(f"wrote {out}", flush=True)

    def model_timings(self, project: Path) -> dict[str, float]:
        """Per-model execution seconds of the last dbt command (its run_results.json)."""
        path = project / ".local" / "target" / "run_results.json"
        if not path.is_file():
            return {}
        results = json.loads(path.read_text())["results"]
        timings = {r["unique_id"].split(".")[-1]: round(r["execution_time"], 2) for r in results}
        return dict(sorted(timings.items(), key=lambda kv: -kv[1]))

    # --- the report ---------------------------------------------------------------------

    def ratios(self) -> list[dict[str, Any]]:
        out = []
        for name, top, bottom, goal, ok in RATIOS:
            if top not in self.figures or any(b not in self.figures for b in bottom):
                continue
            denominator = sum(self.figures[b].seconds for b in bottom)
            value = self.figures[top].seconds / denominator if denominator else float("inf")
            out.append({"ratio": name, "value": round(value, 2), "goal": goal, "met": ok(value)})
        return out

    def machine(self) -> dict[str, Any]:
        with database.connect(self.scale.dbname) as conn:
            version = database.run_sql(conn, SQL, "version").fetchone()[0]
            pg = {n: f"{v}{u or ''}" for n, v, u in database.run_sql(conn, SQL, "settings")}
        mem_kib = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kib = int(line.split()[1])
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=settings.project_dir(),
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        return {
            "commit": commit or None,
            "cores": os.cpu_count(),
            "memory_gib": round(mem_kib / 2**20, 1),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "postgres": version,
            "postgres_settings": pg,
        }

    def table(self) -> list[str]:
        lines = [f"{'figure':<16} {'seconds':>10}  {'peak RSS':>9}  runs / note"]
        for fig in self.figures.values():
            rss = f"{fig.peak_rss_mib:6.0f} MiB" if fig.peak_rss_mib else " " * 10
            runs = ", ".join(f"{r:.1f}" for r in fig.runs)
            lines.append(f"{fig.name:<16} {fig.seconds:10.2f}  {rss}  [{runs}] {fig.note}")
        lines.append("")
        for r in self.ratios():
            lines.append(
                f"{r['ratio']:<42} {r['value']:8.2f}   goal {r['goal']:<6} "
                f"{'met' if r['met'] else 'MISSED'}"
            )
        peak = max((p.peak_rss_mib for p in self.processes), default=0.0)
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        verdict = "met" if peak < RSS_GOAL_MIB else "MISSED"
        lines.append(
            f"{'peak RSS of a step process':<42} {peak:8.0f} MiB goal < {RSS_GOAL_MIB:.0f} "
            f"{verdict}; the bench itself {own:.0f} MiB"
        )
        return lines

    def results(self) -> dict[str, Any]:
        steps: dict[str, float] = {}
        for p in self.processes:
            steps[p.step] = round(max(steps.get(p.step, 0.0), p.peak_rss_mib), 1)
        return {
            "scale": {
                **asdict(self.scale),
                "as_of": self.scale.as_of.isoformat(),
                "full_scale": (self.scale.accounts, self.scale.contacts, self.scale.seed)
                == (5, 1_000_000, 7),
                "definitions": "shipped + 200 generated (seed 7)",
            },
            "dataset": self.dataset,
            "machine": self.machine(),
            "figures": {
                n: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(f).items()}
                for n, f in self.figures.items()
            },
            "ratios": self.ratios(),
            "peak_rss_mib_per_step_process": steps,
            "peak_rss_mib_bench_process": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
            "rss_goal_mib": RSS_GOAL_MIB,
            "details": self.details,
            "notes": self.notes,
        }

    last_as_of: dt.date = dt.date(2026, 11, 22)


def run(scale: Scale, out: Path | None) -> dict[str, Any]:
    from segmentation_dev import bench_defs

    workdir = settings.local_dir() / "bench"
    bench = Bench(scale, workdir)
    defs = bench_defs.generate(200, scale.seed)
    first20 = defs[:20]
    keys20 = [Path(rel).stem for rel, _ in first20]
    print(
        f"scale: {scale.accounts} accounts x {scale.contacts:,} contacts, seed {scale.seed}",
        flush=True,
    )

    def save(done: str) -> dict[str, Any]:
        # Written after every phase: a full-scale run takes hours, and one cut short
        # keeps what it measured, marked as partial.
        results = {**bench.results(), "completed_through": done, "partial": done != "all"}
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=2, default=str) + "\n")
        return results

    bench.prepare_dataset()
    p200 = bench.make_project("p200", defs)
    p20 = bench.make_project("p20", first20)
    bench.first_day(p200)
    save("first_day")
    bench.explain(p200, out.with_name("explain.txt") if out is not None else None)
    bench.last_as_of = bench.daily(p200)
    save("daily")
    bench.preview(p200, bench.last_as_of)
    bench.twenty(p20, bench.last_as_of, keys20)
    print("\n".join(["", "## issue 10 figures", *bench.table()]), flush=True)
    results = save("all")
    if out is not None:
        print(f"wrote {out}", flush=True)
    return results
