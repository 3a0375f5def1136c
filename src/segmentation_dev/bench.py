"""`make bench`: speed and memory measured side by side in one run, printed as ratios.

Timings never live in tests (machines are noisy); here two ways of doing the same work run
back to back on the same data and server, so their ratio means something even when the
absolute numbers don't. Each benchmark runs in its own scratch database.

`scale` (segmentation_dev.bench_scale) is issue 10's set: every figure against the physical
floor, on the scale data set (--accounts x --contacts, seed --seed; default 5 x 1M, seed
7), with its ratios printed and written to bench/results.json. The other benchmarks are
side-by-side comparisons on their own smaller data (--compare-contacts).

Run: `make bench [BENCH_CONTACTS=N BENCH_ACCOUNTS=N]` or
`python -m segmentation_dev.bench [--contacts N] [--accounts N] [--only NAME]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import sql

from segmentation import settings
from segmentation.steps import pipeline
from segmentation.warehouse import bootstrap, database
from segmentation.warehouse.dbt_runner import run_dbt
from segmentation_dev import demo_data, localpg, prd_reference


@dataclass
class Measurement:
    name: str
    seconds: float
    peak_mib: float
    rows: int
    peak_kind: str = "Python"  # what peak_mib measures: Python allocations, or a process's RSS


@dataclass
class Comparison:
    title: str
    baseline: Measurement
    candidate: Measurement
    note: str = ""

    def lines(self) -> list[str]:
        speedup = self.baseline.seconds / self.candidate.seconds if self.candidate.seconds else 0
        out = [f"## {self.title}"]
        for m in (self.baseline, self.candidate):
            out.append(
                f"  {m.name:<28} {m.seconds:8.3f} s  {m.rows:>10,} rows  "
                f"{m.rows / m.seconds if m.seconds else 0:>12,.0f} rows/s  "
                f"peak {m.peak_mib:7.1f} MiB ({m.peak_kind})"
            )
        out.append(
            f"  ratio: {self.candidate.name} is {speedup:.1f}x faster than {self.baseline.name}"
        )
        if self.note:
            out.append(f"  {self.note}")
        return out


def measure(name: str, fn: Callable[[], int], repeat: int = 3) -> Measurement:
    # repeat=1 for the slow ones: the ratio, not a tight confidence interval, is the point.
    """Median wall time of `repeat` runs; peak Python memory of the first."""
    times = []
    peak = 0.0
    rows = 0
    for i in range(repeat):
        if i == 0:
            tracemalloc.start()
        start = time.perf_counter()
        rows = fn()
        times.append(time.perf_counter() - start)
        if i == 0:
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    return Measurement(name, statistics.median(times), peak, rows)


@contextmanager
def scratch_database() -> Iterator[str]:
    """A throwaway database; PGDATABASE points at it meanwhile (dbt reads it from there)."""
    name = f"segments_bench_{secrets.token_hex(4)}"
    database.create_database(name)
    previous = os.environ.get("PGDATABASE")
    os.environ["PGDATABASE"] = name
    try:
        bootstrap.init_db(name)
        yield name
    finally:
        if previous is None:
            os.environ.pop("PGDATABASE", None)
        else:
            os.environ["PGDATABASE"] = previous
        database.drop_database(name)


def _unescape(field: str) -> str | None:
    if field == r"\N":
        return None
    if "\\" not in field:
        return field
    out, i = [], 0
    escapes = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}
    while i < len(field):
        ch = field[i]
        if ch == "\\" and i + 1 < len(field):
            out.append(escapes.get(field[i + 1], field[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def bench_contact_load(contacts: int) -> Comparison:
    """Loading contacts: COPY (what `segments demo-data` does) against row INSERTs."""
    plan = demo_data.make_plan(accounts=3, contacts=contacts, seed=7)
    blocks = list(demo_data.iter_copy_text(plan, "contacts"))
    columns = demo_data.COLUMNS["contacts"]
    rows = [
        tuple(_unescape(f) for f in line.split("\t"))
        for block in blocks
        for line in block.splitlines()
    ]
    target = sql.Identifier("crm_raw", "contacts")
    col_list = sql.SQL(", ").join(sql.Identifier(c) for c in columns)

    with scratch_database() as db:

        def via_copy() -> int:
            with database.transaction(db) as conn:
                conn.execute(sql.SQL("truncate {}").format(target))
                with conn.cursor() as cur:
                    stmt = sql.SQL("copy {} ({}) from stdin").format(target, col_list)
                    with cur.copy(stmt) as copy:
                        for block in blocks:
                            copy.write(block)
                return conn.execute(sql.SQL("select count(*) from {}").format(target)).fetchone()[0]

        def via_insert() -> int:
            placeholders = sql.SQL(", ").join(sql.Placeholder() * len(columns))
            stmt = sql.SQL("insert into {} ({}) values ({})").format(target, col_list, placeholders)
            with database.transaction(db) as conn:
                conn.execute(sql.SQL("truncate {}").format(target))
                with conn.cursor() as cur:
                    cur.executemany(stmt, rows)
                return conn.execute(sql.SQL("select count(*) from {}").format(target)).fetchone()[0]

        baseline = measure("row INSERT (executemany)", via_insert)
        candidate = measure("COPY", via_copy)
    if baseline.rows != candidate.rows:
        raise SystemExit(f"row counts differ: {baseline.rows} vs {candidate.rows}")
    return Comparison(f"Loading {len(rows):,} raw contacts", baseline, candidate)


def bench_segment_features(contacts: int) -> Comparison:
    """The PRD's activity segments: one-pass feature models (what the compiler emits) against
    the same segments hand-written as correlated subqueries (prd_reference)."""
    as_of = dt.date(2026, 6, 30)
    naive_sql = prd_reference.reference_sql(as_of)
    dbt_vars = {"as_of": as_of.isoformat()}
    with scratch_database() as db:
        demo_data.load(accounts=3, contacts=contacts, seed=7, anchor=as_of)
        pipeline.render_definitions()
        # Materialise staging and everything the segments read, so both sides start equal.
        run_dbt(["run", "--select", "+segment_memberships"], dbt_vars)
        compiled = run_dbt(["compile", "--select", "features segments"], dbt_vars)
        code = {r.node.name: r.node.compiled_code for r in compiled.result.results}
        feature_sql = [sql for name, sql in code.items() if name.startswith("int_contact_feat")]
        segment_sql = {key: code[f"seg__all__{key}"] for key in naive_sql}

        def count(conn: Any, query: str) -> int:
            return conn.execute(f"select count(*) from ({query}) as q").fetchone()[0]

        answers: dict[str, dict[str, int]] = {"naive": {}, "features": {}}

        def naive() -> int:
            with database.connect(db) as conn:
                answers["naive"] = {k: count(conn, q) for k, q in naive_sql.items()}
            return sum(answers["naive"].values())

        def one_pass() -> int:
            with database.connect(db) as conn:
                with conn.transaction():
                    # The feature models as the build creates them, then every segment on top.
                    for i, query in enumerate(feature_sql):
                        conn.execute(f"create temp table bench_feature_{i} as {query}")
                answers["features"] = {k: count(conn, q) for k, q in segment_sql.items()}
            return sum(answers["features"].values())

        candidate = measure(f"one pass ({len(feature_sql)} feature scans)", one_pass, repeat=1)
        baseline = measure("correlated subqueries", naive, repeat=1)
    if answers["naive"] != answers["features"]:
        raise SystemExit(f"the two ways disagree: {answers}")
    return Comparison(
        f"{len(naive_sql)} PRD activity segments over {contacts:,} demo contacts",
        baseline,
        candidate,
        note="rows = memberships found (identical on both sides)",
    )


# A published segment of N members, written straight into serving (the pipeline is not what
# is measured): every member has an e-mail or WhatsApp recipient on alternate rows.
_BIG_SEGMENT = (
    "insert into segments_serving.segments (account_id, segment_key, name, definition_hash, "
    "member_count, as_of, published_at) values ('bench', 'big', 'Big', 'bench', %(n)s, "
    "%(as_of)s, now())",
    "insert into segments_serving.segment_members select 'bench', 'big', "
    "'c' || lpad(g::text, 8, '0'), %(as_of)s from generate_series(1, %(n)s) as g",
    "insert into segments_serving.broadcast_recipients select 'bench', 'big', "
    "'c' || lpad(g::text, 8, '0'), ch, case when ch = 'email' then 'c' || g || '@example.com' "
    "else '+62812' || lpad(g::text, 8, '0') end from generate_series(1, %(n)s) as g, "
    "lateral (values (case when g %% 2 = 0 then 'email' else 'whatsapp' end)) as c (ch)",
    "analyze segments_serving.segment_members, segments_serving.broadcast_recipients",
)
# The baseline: the same query, every row fetched into memory first, then written.
_FETCHALL_EXPORT = """
import csv, sys
from psycopg import sql
from segmentation.warehouse import database
(stmt,) = database.statements("export.sql", "members", contacts=sql.SQL(
    "(select null::text as account_id, null::text as contact_id, null::text as full_name)"))
with database.connect() as conn, open(sys.argv[1], "w", newline="") as f:
    database.run_sql(conn, "planner.sql", "no_nested_loops")
    rows = conn.execute(stmt, {"account_id": "bench", "segment_key": "big"}).fetchall()
    csv.writer(f).writerows(rows)
"""
# Runs argv as its only child and prints that child's peak RSS (KiB on Linux).
_PEAK_RSS = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def _peak_rss_mib(argv: list[str]) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, *argv], check=True, capture_output=True, text=True
    )
    return int(done.stdout.strip().splitlines()[-1]) / 1024


def _line_count(path: str) -> int:
    with open(path, newline="") as f:
        return sum(1 for _ in f)


def bench_export(rows: int) -> Comparison:
    """`segments export` of one large published segment (a named cursor, 10k rows a chunk)
    against fetching every row first; peak RSS of the exporting process, not of this one."""
    as_of = dt.date(2026, 11, 22)
    segments = str(Path(sys.executable).with_name("segments"))
    kind = "RSS of the exporter"
    with scratch_database() as db, tempfile.TemporaryDirectory() as tmp:
        with database.transaction(db) as conn:
            for statement in _BIG_SEGMENT:
                conn.execute(statement, {"n": rows, "as_of": as_of})

        def run(name: str, argv: list[str], out: str) -> Measurement:
            start = time.perf_counter()
            peak = _peak_rss_mib(argv)
            seconds = time.perf_counter() - start
            lines = _line_count(out) if out.endswith(".csv") else rows
            return Measurement(name, seconds, peak, lines, peak_kind=kind)

        def export(fmt: str) -> list[str]:
            return [segments, "export", "bench/big", "--format", fmt, "--out", f"{tmp}/out.{fmt}"]

        baseline = run(
            "fetchall, then write",
            [sys.executable, "-c", _FETCHALL_EXPORT, f"{tmp}/all.csv"],
            f"{tmp}/all.csv",
        )
        candidate = run("segments export (streamed)", export("csv"), f"{tmp}/out.csv")
        others = [
            run(f"export --format {f}", export(f), f"{tmp}/out.{f}") for f in ("xlsx", "parquet")
        ]
    if baseline.rows + 1 != candidate.rows:  # the baseline writes no header line
        raise SystemExit(f"row counts differ: {baseline.rows} vs {candidate.rows - 1}")
    formats = ", ".join(f"{m.name}: peak {m.peak_mib:.0f} MiB in {m.seconds:.1f} s" for m in others)
    return Comparison(
        f"Exporting a published segment of {rows:,} members",
        baseline,
        candidate,
        note=f"peak RSS {candidate.peak_mib:.0f} MiB streamed vs {baseline.peak_mib:.0f} MiB "
        f"fetched whole ({baseline.peak_mib / candidate.peak_mib:.1f}x less); {formats}",
    )


def bench_preview(contacts: int, target: str = "globex/loyal_buyers") -> Comparison:
    """`segments preview` of one activity segment (dbt renders it, one read-only query over
    the staged data) against rebuilding its segment layer (the as-of and scope models, the
    feature model it reads, the segment model) with `dbt run`. Staging is built once, before
    both: a preview never rebuilds it."""
    from segmentation.steps import preview

    as_of = dt.date(2026, 6, 30)
    dbt_vars = {"as_of": as_of.isoformat()}
    key = target.split("/")[1]
    model = f"seg__all__{key}"
    with scratch_database() as db:
        demo_data.load(accounts=3, contacts=contacts, seed=7, anchor=as_of)
        pipeline.render_definitions()
        run_dbt(["run", "--select", "+segment_memberships"], dbt_vars)
        layer = ["run", "--select", f"+{model}", "--exclude", "staging"]
        members: dict[str, int] = {}

        def rebuild() -> int:
            run_dbt(layer, dbt_vars)
            with database.connect(db) as conn:
                query = sql.SQL("select count(*) from {}.{} where account_id = %s").format(
                    sql.Identifier("segments_audit"), sql.Identifier(model)
                )
                members["build"] = conn.execute(query, (target.split("/")[0],)).fetchone()[0]
            return members["build"]

        def one_preview() -> int:
            members["preview"] = preview.preview(target, as_of=as_of.isoformat(), limit=20).members
            return members["preview"]

        preview.preview(target, as_of=as_of.isoformat(), limit=0)  # dbt's first full parse
        baseline = measure(f"dbt run +{model} (no staging)", rebuild, repeat=1)
        candidate = measure(f"segments preview {target}", one_preview, repeat=3)
    if members["build"] != members["preview"]:
        raise SystemExit(f"preview and build disagree: {members}")
    return Comparison(
        f"Preview of {target} over {contacts:,} demo contacts",
        baseline,
        candidate,
        note="rows = members (identical on both sides); preview time includes dbt's compile",
    )


# The clustering step in a process of its own, so its peak RSS is the step's alone.
_CLUSTER_STEP = """
import datetime as dt, sys
from segmentation.steps import clusters
result = clusters.cluster(dt.date.fromisoformat(sys.argv[1]), "manual__bench")
"""
# The same step's imports and nothing else: what the process costs before any data.
_CLUSTER_IMPORTS = "from segmentation.steps import clusters  # noqa: F401"


def bench_cluster(contacts: int) -> Comparison:
    """The clustering step (features streamed from a server-side cursor, k by silhouette on a
    sample) on one account of `contacts` demo contacts: peak RSS of the step's process,
    against a process that only imports it (numpy, scipy, scikit-learn, psycopg). The goal
    (issue 13): under 1 GB at 1M contacts."""
    as_of = dt.date(2026, 11, 22)
    kind = "RSS of the process"
    with scratch_database():
        demo_data.load(accounts=1, contacts=contacts, seed=7, anchor=as_of)
        pipeline.render_definitions()
        run_dbt(["run", "--select", "+int_cluster_features"], {"as_of": as_of.isoformat()})

        def run(name: str, code: str, *argv: str) -> Measurement:
            start = time.perf_counter()
            peak = _peak_rss_mib([sys.executable, "-c", code, *argv])
            return Measurement(name, time.perf_counter() - start, peak, contacts, kind)

        baseline = run("import the step only", _CLUSTER_IMPORTS)
        candidate = run("cluster one account", _CLUSTER_STEP, as_of.isoformat())
    return Comparison(
        f"Clustering one account of {contacts:,} demo contacts",
        baseline,
        candidate,
        note=f"peak RSS {candidate.peak_mib:.0f} MiB (goal < 1024 MiB at 1M contacts), of which "
        f"{baseline.peak_mib:.0f} MiB is the imports; the ratio line compares wall times",
    )


def bench_scale(args: argparse.Namespace) -> list[str]:
    """Issue 10's figures and ratios (segmentation_dev.bench_scale)."""
    from segmentation_dev import bench_scale as scale

    config = scale.Scale(
        accounts=args.accounts,
        contacts=args.contacts,
        seed=args.seed,
        as_of=dt.date(2026, 11, 22),
        days=args.days,
        target=args.preview_target,
    )
    scale.run(config, Path(args.out) if args.out else None)
    return []


BENCHMARKS: dict[str, Callable[[argparse.Namespace], Comparison]] = {
    "contact_load": lambda args: bench_contact_load(args.compare_contacts),
    "segment_features": lambda args: bench_segment_features(args.compare_contacts),
    "export_1m": lambda args: bench_export(args.export_rows),
    "preview_1": lambda args: bench_preview(args.compare_contacts),
    "cluster_1m": lambda args: bench_cluster(args.cluster_contacts),
}
# Issue 10's figures print their own table as they go.
SCALE = {"scale": bench_scale}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segmentation_dev.bench", description=__doc__)
    parser.add_argument(
        "--contacts", type=int, default=1_000_000, help="contacts of the scale data set"
    )
    parser.add_argument("--accounts", type=int, default=5, help="accounts of the scale data set")
    parser.add_argument("--seed", type=int, default=7, help="seed of the scale data set")
    parser.add_argument(
        "--days", type=int, default=3, help="daily runs after the first (fewer when one is slow)"
    )
    parser.add_argument("--preview-target", default="globex/loyal_buyers")
    parser.add_argument(
        "--out",
        default=str(settings.project_dir() / "bench" / "results.json"),
        help="where the scale figures go ('' for nowhere)",
    )
    parser.add_argument(
        "--compare-contacts",
        type=int,
        default=20000,
        help="contacts of the side-by-side comparisons (contact_load, segment_features, preview_1)",
    )
    parser.add_argument(
        "--export-rows", type=int, default=1_000_000, help="members of the exported segment"
    )
    parser.add_argument(
        "--cluster-contacts", type=int, default=1_000_000, help="contacts of the clustered account"
    )
    parser.add_argument("--only", choices=sorted([*BENCHMARKS, *SCALE]), action="append")
    args = parser.parse_args(argv)
    localpg.ensure_server()
    for name in args.only or [*BENCHMARKS, *SCALE]:
        if name in SCALE:
            SCALE[name](args)
        else:
            print("\n".join(BENCHMARKS[name](args).lines()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
