"""The clustering step: k-means per account on `int_cluster_features`, back to Postgres.

`cluster(as_of, run_id)` runs after `build` (which built int_cluster_features for the as-of
date) and before `audit`. Per account, in one transaction: stream the account's feature rows
out of Postgres in chunks (a server-side cursor) into numpy, cluster them
(analytics.kmeans), delete the account's rows of that date from contact_clusters,
cluster_profiles and cluster_runs and insert the new ones, so a rerun replaces the date.
An account with too few contacts or nothing that varies gets a `skipped` row in cluster_runs
with the reason, and a warning in the log; nothing raises for it.

Then segments that read `cluster.*` must see today's clusters: when a dbt model depends on
the source `segments_marts.contact_clusters`, exactly that part of the project is rebuilt
(`dbt build --select source:segments_marts.contact_clusters+`) for the as-of date.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb
from psycopg.types.numeric import FloatLoader

from segmentation import settings
from segmentation.analytics import kmeans
from segmentation.errors import ClusterError
from segmentation.steps.selection import BUILD_EXCLUDE, BUILD_EXCLUDED_PATHS, run_vars
from segmentation.warehouse import control, database
from segmentation.warehouse.dbt_runner import manifest_descendants, run_dbt

log = logging.getLogger(__name__)

SQL = "clusters.sql"
FEATURE_MODEL = "int_cluster_features"
KEY_COLUMNS = ("account_id", "contact_id", "as_of")
INDUSTRY_COLUMN = "industry"
# Rows per fetch from the server-side cursor: memory grows with the account, not with this.
CHUNK_ROWS = 20_000
DEPENDENTS = f"source:{settings.SCHEMA_MARTS}.contact_clusters+"
_NUMERIC_TYPES = frozenset(
    psycopg.postgres.types[name].oid
    for name in ("int2", "int4", "int8", "float4", "float8", "numeric")
)


@dataclass(frozen=True)
class AccountClusters:
    account_id: str
    status: str  # kmeans.CLUSTERED | kmeans.SKIPPED
    contacts: int
    k: int | None
    silhouette: float | None
    note: str
    sizes: dict[int, int] = field(default_factory=dict)  # cluster id -> contacts


@dataclass(frozen=True)
class ClusterResult:
    as_of: dt.date
    run_id: str
    accounts: list[AccountClusters]
    rebuilt: list[str]  # dbt models rebuilt because they read contact_clusters

    def summary(self) -> str:
        lines = [f"clusters for {self.as_of}:"]
        for a in self.accounts:
            what = f"k={a.k}, silhouette {a.silhouette:.3f}" if a.k else "skipped"
            lines.append(f"  {a.account_id}: {a.contacts} contacts, {what}: {a.note}")
        if self.rebuilt:
            lines.append(f"  rebuilt: {', '.join(self.rebuilt)}")
        return "\n".join(lines)


def config() -> kmeans.ClusterConfig:
    """The clustering settings (SEGMENTS_CLUSTER_K_MIN, _K_MAX, ...), checked."""
    values: dict[str, int | float] = {}
    variables = (
        ("SEGMENTS_CLUSTER_K_MIN", "k_min", int),
        ("SEGMENTS_CLUSTER_K_MAX", "k_max", int),
        ("SEGMENTS_CLUSTER_MIN_CONTACTS", "min_contacts", int),
        ("SEGMENTS_CLUSTER_SAMPLE_SIZE", "sample_size", int),
        ("SEGMENTS_CLUSTER_MATCH_DISTANCE", "match_distance", float),
    )
    for name, key, kind in variables:
        text = settings.env(name)
        try:
            values[key] = kind(str(text))
        except ValueError:
            raise ClusterError(
                f"{name}={text!r} is not a{'n integer' if kind is int else ' number'}: "
                "fix the variable (docs/configuration.md) and rerun the cluster step."
            ) from None
    try:
        return kmeans.ClusterConfig(**values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ClusterError(
            f"The clustering settings do not fit together: {exc}. Fix "
            f"{', '.join(f'{name}={settings.env(name)}' for name, _, _ in variables)} "
            "(docs/configuration.md) and rerun the cluster step."
        ) from None


def cluster(
    as_of: dt.date,
    run_id: str,
    accounts: Sequence[str] | None = None,
    failed: Mapping[str, str] | None = None,
) -> ClusterResult:
    """Cluster every staged account's contacts for `as_of` and write the results; then
    rebuild the dbt models that read contact_clusters, for the run's scope (`accounts`,
    None: every account, minus `failed`). Holds the run lease of `run_id`."""
    settings_config = config()
    with control.hold(as_of, run_id):
        staged = _feature_accounts(as_of)
        done = [
            _cluster_account(account_id, contacts, as_of, run_id, settings_config)
            for account_id, contacts in staged
        ]
        rebuilt = rebuild_dependents(as_of, run_vars(as_of, accounts, sorted(failed or {})))
    result = ClusterResult(as_of, run_id, done, rebuilt)
    log.info("%s", result.summary())
    return result


def _feature_accounts(as_of: dt.date) -> list[tuple[str, int]]:
    """(account, feature rows) per staged account; refuses features of another date."""
    try:
        with database.connect() as conn:
            rows = database.run_sql(conn, SQL, "feature_accounts").fetchall()
    except pg_errors.UndefinedTable as exc:
        raise ClusterError(
            f"Cannot cluster {as_of}: {exc.diag.message_primary}. Build first (`segments run`, "
            f"or the DAG's build task) so {settings.SCHEMA_MARTS}.{FEATURE_MODEL} and the "
            "staging tables exist; `segments db init` creates the cluster tables."
        ) from exc
    out = []
    for account_id, contacts, first, last in rows:
        if contacts and (first, last) != (as_of, as_of):
            raise ClusterError(
                f"Cannot cluster account {account_id} for {as_of}: {FEATURE_MODEL} was built "
                f"for {first}{'' if first == last else f'..{last}'}. Run the build for {as_of} "
                "first (the DAG's build task, or `segments run --as-of`), then this step."
            )
        out.append((account_id, int(contacts)))
    return out


def _cluster_account(
    account_id: str, contacts: int, as_of: dt.date, run_id: str, cfg: kmeans.ClusterConfig
) -> AccountClusters:
    params = {"account_id": account_id, "as_of": as_of}
    with database.transaction() as conn:
        features, contact_ids = _read_features(conn, account_id, contacts)
        previous = [
            kmeans.PreviousCluster(int(cluster_id), centroid)
            for cluster_id, centroid in database.run_sql(
                conn, SQL, "previous_clusters", params
            ).fetchall()
        ]
        (max_id,) = database.run_sql(conn, SQL, "max_cluster_id", params).fetchone()
        result = kmeans.cluster(features, cfg, previous, int(max_id))
        database.run_sql(conn, SQL, "delete_date", params)
        sizes: dict[int, int] = {}
        if result.status == kmeans.CLUSTERED:
            _write_clusters(conn, account_id, as_of, contact_ids, result)
            sizes = {p.cluster_id: p.size for p in result.profiles}
        database.run_sql(
            conn,
            SQL,
            "insert_run",
            {
                **params,
                "status": result.status,
                "k": result.k,
                "silhouette": result.silhouette,
                "note": result.note,
                "run_id": run_id,
                "contact_count": features.rows,
            },
        )
    if result.status == kmeans.SKIPPED:
        log.warning(
            "account %s, %s: clustering skipped: %s. Its segments' cluster.* fields have no "
            "value for this date.",
            account_id,
            as_of,
            result.note,
        )
    else:
        log.info(
            "account %s, %s: %s, silhouette %s", account_id, as_of, result.note, result.silhouette
        )
    return AccountClusters(
        account_id, result.status, features.rows, result.k, result.silhouette, result.note, sizes
    )


def _read_features(
    conn: psycopg.Connection, account_id: str, expected: int
) -> tuple[kmeans.Features, list[str]]:
    """One account's feature rows, streamed in chunks of CHUNK_ROWS into numpy."""
    (statement,) = database.statements(SQL, "features")
    with conn.cursor(name="cluster_features") as cursor:
        # Amounts are numeric: floats straight away, no Decimal per value.
        cursor.adapters.register_loader("numeric", FloatLoader)
        cursor.execute(statement, {"account_id": account_id})
        columns = [(c.name, c.type_code) for c in cursor.description or []]
        names = [n for n, _ in columns if n not in KEY_COLUMNS and n != INDUSTRY_COLUMN]
        odd = [n for n, t in columns if n in names and t not in _NUMERIC_TYPES]
        if odd:
            raise ClusterError(
                f"Cannot cluster account {account_id}: {FEATURE_MODEL} column(s) "
                f"{', '.join(odd)} are not numeric. Every column but {', '.join(KEY_COLUMNS)} "
                f"and {INDUSTRY_COLUMN} is a feature: cast it to a number in the model."
            )
        index = {n: i for i, (n, _) in enumerate(columns)}
        numeric = [index[n] for n in names]
        contact = index["contact_id"]
        industry_at = index.get(INDUSTRY_COLUMN)
        values = np.empty((max(expected, 1), len(names)), dtype=np.float64)
        codes = np.full(values.shape[0], -1, dtype=np.int32)
        industries: dict[str, int] = {}
        contact_ids: list[str] = []
        rows = 0
        while chunk := cursor.fetchmany(CHUNK_ROWS):
            if rows + len(chunk) > values.shape[0]:  # rebuilt since it was counted
                values = np.resize(values, (2 * (rows + len(chunk)), len(names)))
                codes = np.resize(codes, values.shape[0])
            block = values[rows : rows + len(chunk)]
            block[:] = np.array([[r[j] for j in numeric] for r in chunk], dtype=np.float64)
            if industry_at is not None:
                codes[rows : rows + len(chunk)] = [
                    -1
                    if r[industry_at] is None
                    else industries.setdefault(r[industry_at], len(industries))
                    for r in chunk
                ]
            contact_ids.extend(r[contact] for r in chunk)
            rows += len(chunk)
    names_by_code = tuple(sorted(industries, key=industries.__getitem__))
    return (
        kmeans.Features(
            tuple(names),
            values[:rows],
            codes[:rows] if industry_at is not None else None,
            names_by_code,
        ),
        contact_ids,
    )


def _write_clusters(
    conn: psycopg.Connection,
    account_id: str,
    as_of: dt.date,
    contact_ids: list[str],
    result: kmeans.Clustering,
) -> None:
    labels = result.label_of()
    assert result.assignments is not None
    (copy_statement,) = database.statements(SQL, "copy_contact_clusters")
    with conn.cursor().copy(copy_statement) as copy:
        for contact_id, cluster_id in zip(contact_ids, result.assignments.tolist(), strict=True):
            copy.write_row((account_id, contact_id, as_of, cluster_id, labels[cluster_id]))
    for p in result.profiles:
        database.run_sql(
            conn,
            SQL,
            "insert_profile",
            {
                "account_id": account_id,
                "as_of": as_of,
                "cluster_id": p.cluster_id,
                "cluster_label": p.label,
                "size": p.size,
                "features": Jsonb(p.features),
                "centroid": Jsonb(p.centroid),
            },
        )


def rebuild_dependents(as_of: dt.date, dbt_vars: dict[str, Any] | None = None) -> list[str]:
    """Rebuild (models and tests) what reads the source contact_clusters, for `as_of`;
    nothing when no model does. Returns the models rebuilt.

    Whether any model does comes from the manifest the run's build just wrote (a dbt parse
    costs more than the clustering of a small account); dbt is asked only when that manifest
    may be out of date."""
    models = manifest_descendants(settings.SCHEMA_MARTS, "contact_clusters", BUILD_EXCLUDED_PATHS)
    if models is None:
        listed = run_dbt(
            [
                "ls",
                "--select",
                DEPENDENTS,
                "--exclude",
                BUILD_EXCLUDE,
                "--resource-type",
                "model",
                "--output",
                "name",
                "--log-level",
                "none",
            ]
        )
        models = sorted(str(name) for name in listed.result or [])
    if not models:
        log.info(
            "no dbt model reads %s.contact_clusters: nothing to rebuild", settings.SCHEMA_MARTS
        )
        return []
    log.info(
        "rebuilding %d model(s) that read contact_clusters: %s", len(models), ", ".join(models)
    )
    run_dbt(
        ["build", "--select", DEPENDENTS, "--exclude", BUILD_EXCLUDE],
        dbt_vars or run_vars(as_of),
    )
    return models
