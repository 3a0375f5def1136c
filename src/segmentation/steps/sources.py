"""The run's first look at its inputs: which raw CRM tables are empty, before
`dbt source freshness` reads them.

dbt fails the freshness of a source with no row, so a tenant whose CRM has no tickets, deals
or users yet could not run at all. An empty optional table only warns (its freshness is not
checked; the staging model and every condition on it see no rows). Without accounts or
contacts there is nothing to segment: SourceEmptyError names the table and stops the run
before anything is built.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from segmentation import settings
from segmentation.errors import SourceEmptyError
from segmentation.warehouse import catalog, database
from segmentation.warehouse.dbt_runner import run_dbt

log = logging.getLogger(__name__)

# The dbt source (models/staging/crm/_sources.yml) over the raw schema.
SOURCE = "crm"
# Without these a run has nothing to segment; every other raw table is optional.
REQUIRED = ("accounts", "contacts")
_TABLE = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class SourceCheck:
    """What the check found: the empty optional tables (warned about, freshness not
    checked) and dbt's freshness result for the others."""

    empty: tuple[str, ...]
    freshness: Any = None

    def warnings(self) -> list[str]:
        return [empty_warning(table) for table in self.empty]

    def summary(self) -> str:
        if not self.empty:
            return "every source has rows"
        return f"empty optional source(s), not checked: {', '.join(self.empty)}"


def empty_warning(table: str) -> str:
    raw = settings.SCHEMA_RAW
    return (
        f"{raw}.{table} is empty: the run goes on without it (its freshness is not checked, "
        f"and conditions reading it match no contact). Load the CRM's {table} into "
        f"{raw}.{table} when it has some (docs/raw-contract.md)."
    )


def empty_tables() -> tuple[str, ...]:
    """The empty optional raw tables (each logged as a warning). Raises SourceEmptyError
    when accounts or contacts is empty."""
    with database.connect(autocommit=True) as conn:
        empty = catalog.empty_raw_tables(conn)
    raw = settings.SCHEMA_RAW
    missing = [table for table in REQUIRED if table in empty]
    if missing:
        names = " and ".join(f"{raw}.{table}" for table in missing)
        raise SourceEmptyError(
            f"{names} {'is' if len(missing) == 1 else 'are'} empty: a run needs at least one "
            f"account and one contact, so nothing was built or published. Load the CRM export "
            f"into {names} (docs/raw-contract.md), or try the pipeline on "
            "`segments demo-data`."
        )
    # Table names come from the database's catalogue; dbt selectors get only plain names.
    optional = tuple(t for t in empty if t not in REQUIRED and _TABLE.match(t))
    for table in optional:
        log.warning(empty_warning(table))
    return optional


def check() -> SourceCheck:
    """Fail on an empty required table, warn on empty optional ones, then `dbt source
    freshness` of every source that has rows (stale ones warn, too stale ones fail)."""
    empty = empty_tables()
    args = ["source", "freshness"]
    if empty:
        args += ["--exclude", *(f"source:{SOURCE}.{table}" for table in empty)]
    return SourceCheck(empty, run_dbt(args))
