"""The statement profile of `make bench`'s daily run: `pg_stat_activity` sampled every few
seconds from a thread, each sample charged to the step running then. A statement seen in n
samples ran for about n x the interval (+- one interval), which is what a per-statement
profile of a 35-minute run needs, at no cost to the run itself."""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any

import psycopg

from segmentation.warehouse import database

SQL = "bench.sql"
INTERVAL_SECONDS = 5.0
TOP = 12
_NODE = re.compile(r'"node_id": "([^"]+)"')
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_LITERAL = re.compile(r"'[^']*'")
_SPACE = re.compile(r"\s+")


def statement_key(query: str) -> str:
    """dbt's node for dbt's statements (from its query comment), else the statement's start
    with its literals blanked, so that one statement is one key however often it runs."""
    node = _NODE.search(query)
    if node:
        return f"dbt {node.group(1)}"
    text = _SPACE.sub(" ", _LITERAL.sub("'?'", _COMMENT.sub("", query))).strip()
    return text[:120]


class StatementSampler:
    """Samples while the context is open; `label` names the step the samples go to."""

    def __init__(self, dbname: str, interval: float = INTERVAL_SECONDS) -> None:
        self.dbname = dbname
        self.interval = interval
        self.label = "none"
        self.samples: Counter[tuple[str, str]] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def __enter__(self) -> StatementSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with database.connect(self.dbname, autocommit=True) as conn:
            while not self._stop.wait(self.interval):
                try:
                    rows = database.run_sql(
                        conn, SQL, "active_statements", {"dbname": self.dbname}
                    ).fetchall()
                except psycopg.Error:
                    continue  # a sample lost is one interval less of profile, not a failure
                label = self.label
                for (query,) in rows:
                    self.samples[(label, statement_key(query or ""))] += 1

    def profile(self, top: int = TOP) -> dict[str, list[dict[str, Any]]]:
        """Per step, its most sampled statements with their estimated seconds."""
        out: dict[str, list[dict[str, Any]]] = {}
        for (label, key), n in self.samples.most_common():
            rows = out.setdefault(label, [])
            if len(rows) < top:
                rows.append({"seconds": n * self.interval, "statement": key})
        return out
