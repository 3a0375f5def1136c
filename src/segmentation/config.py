"""Project paths and settings shared by the CLI, the DAG and the tests."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_TIMEZONE = "Asia/Jakarta"

SCHEMA_RAW = "crm_raw"
SCHEMA_STAGING = "segments_staging"
SCHEMA_AUDIT = "segments_audit"
SCHEMA_SERVING = "segments_serving"
SCHEMA_HISTORY = "segments_history"
SCHEMA_CONTROL = "segments_control"


def project_dir() -> Path:
    """The directory holding dbt_project.yml.

    SEGMENTS_PROJECT_DIR wins; otherwise the checkout this package was installed from
    (editable install), then the current directory and its parents.
    """
    env = os.environ.get("SEGMENTS_PROJECT_DIR")
    if env:
        return Path(env).resolve()
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
    import yaml

    project = yaml.safe_load((project_dir() / "dbt_project.yml").read_text())
    return {name: str(rule) for name, rule in project["vars"]["address_rules"].items()}


def timezone() -> str:
    return os.environ.get("SEGMENTS_TIMEZONE", DEFAULT_TIMEZONE)
