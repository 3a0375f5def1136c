"""Programmatic dbt invocations (dbtRunner), shared by the CLI, the DAG and the tests."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from segmentation import settings
from segmentation.errors import DbtError, DbtNodesFailedError


def profiles_dir() -> Path:
    """A profiles directory holding a copy of profiles.example.yml (dbt wants `profiles.yml`).

    The example reads every connection setting from libpq variables, so the copy holds no
    secret and is refreshed on every call.
    """
    target = settings.local_dir() / "dbt"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(settings.project_dir() / "profiles.example.yml", target / "profiles.yml")
    return target


def target_dir() -> Path:
    """dbt's target directory (DBT_TARGET_PATH, default .local/target)."""
    return Path(os.environ.get("DBT_TARGET_PATH") or settings.local_dir() / "target")


def manifest_descendants(
    source_name: str, table: str, exclude_paths: tuple[str, ...]
) -> list[str] | None:
    """Names of the models downstream of source `source_name.table` (outside `exclude_paths`),
    from the manifest of dbt's last parse; None when that manifest may be out of date (a file
    under models/ is newer, or there is none), so the caller asks dbt itself."""
    manifest_file = target_dir() / "manifest.json"
    models_dir = settings.project_dir() / "models"
    try:
        parsed_at = manifest_file.stat().st_mtime
    except FileNotFoundError:
        return None
    if any(p.stat().st_mtime > parsed_at for p in models_dir.rglob("*") if p.is_file()):
        return None
    manifest = json.loads(manifest_file.read_text())
    roots = [
        uid
        for uid, node in manifest.get("sources", {}).items()
        if node.get("source_name") == source_name and node.get("name") == table
    ]
    if not roots:
        return None
    children = manifest.get("child_map", {})
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    nodes = manifest.get("nodes", {})
    return sorted(
        nodes[uid]["name"]
        for uid in seen
        if uid.startswith("model.")
        and not nodes[uid].get("original_file_path", "").startswith(exclude_paths)
    )


def run_dbt(args: list[str], dbt_vars: dict[str, Any] | None = None) -> Any:
    """Run one dbt command in-process; raise DbtError naming the failed nodes."""
    from dbt.cli.main import dbtRunner

    project = settings.project_dir()
    os.environ.setdefault("DBT_TARGET_PATH", str(settings.local_dir() / "target"))
    os.environ.setdefault("DBT_LOG_PATH", str(settings.local_dir() / "logs"))
    argv = [
        *args,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(profiles_dir()),
    ]
    if dbt_vars:
        argv += ["--vars", json.dumps(dbt_vars)]
    result = dbtRunner().invoke(argv)
    if not result.success:
        if result.exception is not None:
            raise DbtError(_failure_summary(args, result))
        raise DbtNodesFailedError(_failure_summary(args, result), failed_nodes(result))
    return result


FAILED_STATUSES = {"error", "fail", "runtimeerr", "runtime error"}


def failed_nodes(result: Any) -> list[dict[str, Any]]:
    """The nodes of a dbt result that failed: unique_id, tags, message, and the nodes a test
    depends on (so a failed test can be traced to its model)."""
    nodes = []
    for node_result in getattr(result.result, "results", None) or []:
        if str(getattr(node_result, "status", "")).lower() not in FAILED_STATUSES:
            continue
        node = getattr(node_result, "node", None)
        depends_on = getattr(getattr(node, "depends_on", None), "nodes", None) or []
        nodes.append(
            {
                "unique_id": getattr(node, "unique_id", "?"),
                "tags": list(getattr(node, "tags", None) or []),
                "depends_on": list(depends_on),
                "message": (node_result.message or "").strip(),
            }
        )
    return nodes


def _failure_summary(args: list[str], result: Any) -> str:
    lines = [f"dbt {' '.join(args)} failed."]
    if result.exception is not None:
        lines.append(f"  {type(result.exception).__name__}: {result.exception}")
    res = result.result
    for node_result in getattr(res, "results", None) or []:
        status = str(getattr(node_result, "status", ""))
        if status.lower() in FAILED_STATUSES:
            node = getattr(node_result, "node", None)
            name = getattr(node, "unique_id", "?")
            lines.append(f"  {status}: {name}: {(node_result.message or '').strip()}")
    return "\n".join(lines)
