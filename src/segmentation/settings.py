"""Project paths, schema names and every SEGMENTS_* environment variable, in one place.

`SETTINGS` is the one table of the environment variables (docs/configuration.md is written
from it and a test keeps the two equal); code reads them only through `env()`, which refuses
a name the table lacks. Each module still parses and checks its own values (with an error
that names the variable).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_TIMEZONE = "Asia/Jakarta"

SCHEMA_RAW = "crm_raw"
SCHEMA_STAGING = "segments_staging"
SCHEMA_AUDIT = "segments_audit"
SCHEMA_SERVING = "segments_serving"
SCHEMA_HISTORY = "segments_history"
SCHEMA_CONTROL = "segments_control"
# Segment analytics: the dbt marts (models/analytics/) and the tables steps.clusters writes.
SCHEMA_MARTS = "segments_marts"


@dataclass(frozen=True)
class Setting:
    default: str | None  # what env() returns when the variable is unset
    meaning: str
    read_by: str
    default_doc: str | None = None  # how a computed default (None here) is found


SETTINGS: dict[str, Setting] = {
    "SEGMENTS_PROJECT_DIR": Setting(
        None,
        "the directory holding dbt_project.yml and segment_defs/",
        "settings",
        "the checkout, else the nearest parent with dbt_project.yml",
    ),
    "SEGMENTS_TIMEZONE": Setting(
        DEFAULT_TIMEZONE,
        "timezone of a manual `segments run`'s as-of date (the DAG uses each account's own)",
        "settings, steps.pipeline",
    ),
    "SEGMENTS_GX_DIR": Setting(
        None, "the Great Expectations project", "steps.audit", "expectations/ (committed)"
    ),
    "SEGMENTS_REFRESH_HOUR": Setting(
        "8",
        "local hour (0-23) at which the DAG refreshes each account, in its own timezone",
        "steps.schedule",
    ),
    "SEGMENTS_DAG_RETRIES": Setting("2", "retries of a failed DAG task", "steps.airflow_support"),
    "SEGMENTS_DAG_RETRY_DELAY_SECONDS": Setting(
        "300", "seconds between retries", "steps.airflow_support"
    ),
    "SEGMENTS_PUBLISH_LOCK_TIMEOUT": Setting(
        "30s", "how long publish waits for a lock on a serving table", "steps.publish"
    ),
    "SEGMENTS_PUBLISH_STATEMENT_TIMEOUT": Setting(
        "15min", "the longest statement of the publish transaction", "steps.publish"
    ),
    "SEGMENTS_CHANGE_FLOOR": Setting(
        "20",
        "a change of fewer members than this never quarantines a segment (max_change_pct)",
        "steps.audit",
    ),
    "SEGMENTS_LEASE_TTL_SECONDS": Setting(
        "3600", "seconds after which a dead run's lease expires", "warehouse.control"
    ),
    "SEGMENTS_INIT_LOCK_TIMEOUT": Setting(
        "5", "seconds `segments db init` waits for a lock, then changes nothing", "security"
    ),
    "SEGMENTS_READER_ROLE": Setting(
        "broadcast_reader", "group role of Broadcast's per-tenant logins", "warehouse.security"
    ),
    "SEGMENTS_MULTIPLEXER_ROLE": Setting(
        "broadcast_multiplexer",
        "role of a login that picks its tenant with app.account_id",
        "warehouse.security",
    ),
    "SEGMENTS_PIPELINE_ROLE": Setting(
        "segments_pipeline", "role of the pipeline's login", "warehouse.security"
    ),
    "SEGMENTS_READER_CONNECTION_LIMIT": Setting(
        "10", "connection limit of each reader login", "warehouse.security"
    ),
    "SEGMENTS_READER_TEMP_FILE_LIMIT": Setting(
        "1GB", "temp_file_limit of each reader login", "warehouse.security"
    ),
    "SEGMENTS_PIPELINE_CONNECTION_RESERVE": Setting(
        "10",
        "connections kept free for the pipeline when reader limits are granted",
        "warehouse.security",
    ),
    "SEGMENTS_CLUSTER_K_MIN": Setting(
        "2", "fewest clusters k-means tries per account", "steps.clusters"
    ),
    "SEGMENTS_CLUSTER_K_MAX": Setting(
        "8", "most clusters k-means tries per account (k by silhouette)", "steps.clusters"
    ),
    "SEGMENTS_CLUSTER_MIN_CONTACTS": Setting(
        "50", "an account with fewer contacts is not clustered (skipped)", "steps.clusters"
    ),
    "SEGMENTS_CLUSTER_SAMPLE_SIZE": Setting(
        "10000",
        "contacts (fixed-seed sample) on which k is chosen by silhouette",
        "steps.clusters",
    ),
    "SEGMENTS_CLUSTER_MATCH_DISTANCE": Setting(
        "1.0",
        "largest standardised centroid move that keeps a cluster's id from the previous date",
        "steps.clusters",
    ),
    "SEGMENTS_PG_PORT": Setting(
        "54329", "port of the project-local cluster", "segmentation_dev.localpg"
    ),
    "SEGMENTS_PG_BINDIR": Setting(
        None,
        "directory of the PostgreSQL binaries for the local cluster",
        "segmentation_dev.localpg",
        "PATH, then /usr/lib/postgresql/*/bin",
    ),
    "SEGMENTS_PG_OS_USER": Setting(
        None,
        "unprivileged OS user that owns the local cluster when run as root",
        "segmentation_dev.localpg",
        "`postgres`, else a created system user `segmentspg`",
    ),
}


def default(name: str) -> str | None:
    return _setting(name).default


def env(name: str) -> str | None:
    """The environment variable `name` (one of SETTINGS), else its default. An empty value
    counts as unset."""
    return os.environ.get(name) or _setting(name).default


def _setting(name: str) -> Setting:
    try:
        return SETTINGS[name]
    except KeyError:
        raise KeyError(f"{name} is not a documented setting: add it to settings.SETTINGS") from None


def settings_table() -> str:
    """docs/configuration.md's table."""
    rows = ["| Variable | Default | What it sets | Read by |", "|---|---|---|---|"]
    for name, s in SETTINGS.items():
        shown = f"`{s.default}`" if s.default is not None else (s.default_doc or "-")
        rows.append(f"| `{name}` | {shown} | {s.meaning} | `{s.read_by}` |")
    return "\n".join(rows) + "\n"


def project_dir() -> Path:
    """The directory holding dbt_project.yml.

    SEGMENTS_PROJECT_DIR wins; otherwise the checkout this package was installed from
    (editable install), then the current directory and its parents.
    """
    configured = env("SEGMENTS_PROJECT_DIR")
    if configured:
        return Path(configured).resolve()
    here = Path(__file__).resolve()
    candidates = [here.parents[2], *Path.cwd().resolve().parents]
    candidates.insert(1, Path.cwd().resolve())
    for candidate in candidates:
        if (candidate / "dbt_project.yml").is_file():
            return candidate
    return Path.cwd().resolve()


def local_dir() -> Path:
    """Git-ignored working state: the local cluster, generated dbt profiles, artifacts."""
    return project_dir() / ".local"


def address_rules() -> dict[str, str]:
    """The address rules {'e164': regex, 'email': regex} (PostgreSQL syntax): var
    `address_rules` of dbt_project.yml, the one definition staging and the dbt tests use too."""
    project = yaml.safe_load((project_dir() / "dbt_project.yml").read_text())
    return {name: str(rule) for name, rule in project["vars"]["address_rules"].items()}


def timezone() -> str:
    return env("SEGMENTS_TIMEZONE") or DEFAULT_TIMEZONE
