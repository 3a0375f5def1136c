"""The membership audit: a Great Expectations checkpoint over the candidate in `segments_audit`.

Write-audit-publish: dbt writes the candidate, this module audits it, publish makes it
visible. The GX project (suites, validation definitions, checkpoint, datasource) is
committed under `expectations/`; see segmentation_dev.audit_project for how it was written.

Before the checkpoint runs, the audit derives small `segments_audit.audit_*` tables from the
candidate, so every GX asset exists even when optional relations (exclusive groups) do not:

- audit_candidate_sizes: one row per enabled catalogue segment with its member count, its
  bounds, the change floor (SEGMENTS_CHANGE_FLOOR), the count and definition hash last
  published (publish.last_published()) and whether the definition changed since;
- audit_group_assignments: group assignments with the group's `exclusive` flag (empty when
  the group relations have not been built);
- audit_candidate_recipients: the (segment, contact, channel, address) rows Broadcast would
  receive, derived from membership and staged contacts by the publish rule: consent true
  for the channel and an address present. The audit then checks consent and address format;
- audit_expected_segments: the enabled segments the definitions declare (int_segment_scopes,
  sql/audit.sql, query `expected`), so a missing catalogue row is caught;
- audit_membership_summary and audit_recipients_summary: the two large relations (the
  membership, its recipients) summarised per segment (and channel) in one pass each: rows,
  nulls, duplicates, foreign members, missing consent, invalid addresses, each with a
  sample of its offenders' contact ids. GX checks these, so no suite reads the candidate
  row by row (issue 10: an audit of 13.6M rows took 8 minutes that way).

The derived tables are unlogged: every audit rebuilds them.

Failures of suite `segment_bounds` quarantine single segments. Any other failure is global:
when every row it reports names an account (duplicates, consent, addresses, a missing
catalogue row of that account) it fails just those accounts (`AuditResult.failed_accounts`,
account -> cause), which are then not published while the others are; a failure that names
no account (a column check, more rows than GX reports, the candidate itself) blocks the
publish of every account.

In suite `segment_bounds`, max_change_pct judges a segment only when its definition_hash is the
one last published (a deliberate rule change is judged by min_members/max_members alone) and
the change is at least SEGMENTS_CHANGE_FLOOR members (small segments move by a few members
without it meaning anything). A quarantine is released by `segments accept` (steps.accept).

The audit fingerprints the candidate (warehouse.control) in the transaction that derives
the audit_* tables, checks that it was built for the audited as-of date, fingerprints it again
after the checkpoint (a candidate rebuilt while GX read it is a global failure), and records
the fingerprint with its verdict in segments_control. `AuditResult.audit_id` names that record;
publish refuses any candidate that differs from it.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from segmentation import settings
from segmentation.errors import AuditError
from segmentation.steps import publish
from segmentation.warehouse import control, database
from segmentation.warehouse import recipients as recipient_rule

log = logging.getLogger(__name__)

# The checkpoint of the committed GX project (expectations/, written by
# segmentation_dev.audit_project) and the suites whose failures quarantine single segments;
# every other suite failure is global.
CHECKPOINT = "membership_audit"
QUARANTINE_SUITES = frozenset({"segment_bounds"})

# A cross-tenant member means the generated SQL itself is wrong, which no single account
# owns: these checks (by their description's start) block every account's publish.
NEVER_CONTAINED = ("Tenant isolation",)

# GX caps the rows an unexpected-rows query returns in its result.
GX_MAX_DETAIL_ROWS = 200


@dataclass
class AuditResult:
    global_failures: list[str] = field(default_factory=list)
    quarantined: dict[tuple[str, str], str] = field(default_factory=dict)
    data_docs: Path | None = None
    # segments_control.audits row holding the fingerprint of what was checked (None: the
    # checkpoint did not run, e.g. the candidate was missing).
    audit_id: int | None = None
    # plan_hash of the compiled plan whose candidate was audited (steps.definitions)
    plan_hash: str | None = None
    success: bool = False
    # account -> cause: accounts whose own rows failed a global check (not published)
    failed_accounts: dict[str, str] = field(default_factory=dict)
    # the global_failures that are those accounts' (each names only failed_accounts)
    attributed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.success = not self.global_failures and not self.quarantined

    @property
    def blocking_failures(self) -> list[str]:
        """The global failures no single account owns: they block every account's publish."""
        attributed = set(self.attributed)
        return [f for f in self.global_failures if f not in attributed]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (Airflow XCom): tuple keys become [account, segment, reason] lists."""
        return {
            "global_failures": list(self.global_failures),
            "quarantined": [[a, s, r] for (a, s), r in sorted(self.quarantined.items())],
            "data_docs": str(self.data_docs) if self.data_docs else None,
            "audit_id": self.audit_id,
            "plan_hash": self.plan_hash,
            "success": self.success,
            "failed_accounts": dict(sorted(self.failed_accounts.items())),
            "attributed": list(self.attributed),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditResult:
        return cls(
            global_failures=list(data["global_failures"]),
            quarantined={(a, s): r for a, s, r in data["quarantined"]},
            data_docs=Path(data["data_docs"]) if data.get("data_docs") else None,
            audit_id=data.get("audit_id"),
            plan_hash=data.get("plan_hash"),
            failed_accounts=dict(data.get("failed_accounts") or {}),
            attributed=list(data.get("attributed") or []),
        )

    def summary(self) -> str:
        lines = [
            f"audit: {len(self.global_failures)} global failure(s), "
            f"{len(self.quarantined)} quarantined segment(s)"
            + (f", {len(self.failed_accounts)} failed account(s)" if self.failed_accounts else "")
        ]
        lines += [f"  global: {failure}" for failure in self.global_failures]
        lines += [f"  account {a} failed: {c}" for a, c in sorted(self.failed_accounts.items())]
        lines += [f"  quarantined {a}/{s}: {r}" for (a, s), r in sorted(self.quarantined.items())]
        if self.data_docs:
            lines.append(f"  data docs: {self.data_docs}")
        return "\n".join(lines)


def gx_root() -> Path:
    """The GX project directory: SEGMENTS_GX_DIR, else the committed `expectations/`."""
    env = settings.env("SEGMENTS_GX_DIR")
    return Path(env).resolve() if env else settings.project_dir() / "expectations"


def copy_gx_project(target: Path) -> Path:
    """Copy the committed GX project without its generated output (tests, isolated runs)."""
    source = settings.project_dir() / "expectations"
    shutil.copytree(
        source, target, ignore=shutil.ignore_patterns("uncommitted"), dirs_exist_ok=True
    )
    return target


# --- the derived relations ------------------------------------------------------------------

_AUDIT = settings.SCHEMA_AUDIT
_STAGING = settings.SCHEMA_STAGING

_REQUIRED = ("segment_memberships", "segment_catalogue", "int_segment_scopes")

# What the audit fingerprints: the live candidate relations publish reads (and the as-of).
_CANDIDATE = {
    "membership": f"{_AUDIT}.segment_memberships",
    "catalogue": f"{_AUDIT}.segment_catalogue",
    "groups": f"{_AUDIT}.segment_group_assignments",
    "contacts": f"{_STAGING}.stg_crm__contacts",
    "as_of": f"{_AUDIT}.int_segment_as_of",
}


def _run(
    conn: psycopg.Connection,
    query: str,
    params: dict[str, Any] | None = None,
    **relations: sql.Composable,
) -> None:
    database.run_sql(conn, "audit.sql", query, params, **relations)


def _relation_exists(conn: psycopg.Connection, schema: str, name: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (f"{schema}.{name}",)).fetchone()[0]


def change_floor() -> int:
    """SEGMENTS_CHANGE_FLOOR: a change of fewer members never quarantines (max_change_pct)."""
    raw = settings.env("SEGMENTS_CHANGE_FLOOR")
    try:
        floor = int(str(raw))
    except ValueError:
        floor = -1
    if floor < 0:
        raise AuditError(
            f"SEGMENTS_CHANGE_FLOOR={raw!r} is not a whole number of members (0 or more): set "
            "it to e.g. 20, or unset it for the default."
        )
    return floor


def prepare_relations(
    last_counts: Mapping[tuple[str, str], int],
    last_hashes: Mapping[tuple[str, str], str | None] | None = None,
) -> control.Fingerprint:
    """(Re)build the audit_* tables from the candidate in one transaction; return the
    candidate's fingerprint, taken first in that transaction (it then holds the relations'
    locks, so dbt cannot swap them before the derived tables are written). A segment without
    a hash in `last_hashes` counts as unchanged (max_change_pct applies)."""
    hashes = last_hashes or {}
    floor = change_floor()
    with database.transaction() as conn:
        missing = [r for r in _REQUIRED if not _relation_exists(conn, _AUDIT, r)]
        if not _relation_exists(conn, _STAGING, "stg_crm__contacts"):
            missing.append(f"{_STAGING}.stg_crm__contacts")
        if missing:
            raise AuditError(
                f"The candidate is incomplete: {', '.join(missing)} not found in "
                f"{_AUDIT}. Run the build step (`dbt build`) before the audit."
            )
        prints = control.fingerprint(conn, _CANDIDATE)
        _run(conn, "sizes", {"change_floor": floor})
        with conn.cursor() as cur:
            cur.executemany(
                database.statements("audit.sql", "last_published")[0],
                [
                    {
                        "count": count,
                        "hash": hashes.get((account, segment)),
                        "account_id": account,
                        "segment_key": segment,
                    }
                    for (account, segment), count in last_counts.items()
                ],
            )
        groups = all(
            _relation_exists(conn, _AUDIT, r)
            for r in ("segment_group_assignments", "int_group_catalogue")
        )
        _run(conn, "groups" if groups else "no_groups")
        rule = recipient_rule.recipients(
            members=sql.Identifier(*_CANDIDATE["membership"].split(".")),
            contacts=sql.Identifier(*_CANDIDATE["contacts"].split(".")),
        )
        _run(conn, "recipients", recipient_rule.rule_params(), recipients=rule)
        as_of_rel = f"{settings.SCHEMA_AUDIT}.int_segment_as_of"
        if conn.execute("select to_regclass(%s) is not null", (as_of_rel,)).fetchone()[0]:
            run_accounts: sql.Composable = sql.Identifier(*as_of_rel.split("."))
        else:
            scoped = database.statements("audit.sql", "scoped_accounts")[0]
            run_accounts = sql.SQL("({})").format(scoped)
        _run(conn, "expected", run_accounts=run_accounts)
        _run(conn, "membership_summary", {"sample": GX_MAX_DETAIL_ROWS})
        _run(conn, "recipients_summary", {"sample": GX_MAX_DETAIL_ROWS})
    return prints


# --- the checkpoint -------------------------------------------------------------------------


def run_audit(
    as_of: dt.date,
    run_id: str,
    *,
    last_counts: Mapping[tuple[str, str], int] | None = None,
    last_hashes: Mapping[tuple[str, str], str | None] | None = None,
) -> AuditResult:
    """Audit the candidate for `as_of`. Never raises for data problems: they are in the result.

    `last_counts` and `last_hashes` default to what is published now (publish.last_published());
    given `last_counts` alone, no definition counts as changed.
    """
    if last_counts is None:
        published = publish.last_published()
        counts: Mapping[tuple[str, str], int] = {k: n for k, (n, _) in published.items()}
        hashes = {k: h for k, (_, h) in published.items()} if last_hashes is None else last_hashes
    else:
        counts, hashes = last_counts, last_hashes or {}
    try:
        prints = prepare_relations(counts, hashes)
    except AuditError as exc:
        return AuditResult(global_failures=[str(exc)])

    checkpoint_result = _run_checkpoint(run_id, as_of)
    global_failures: list[str] = _candidate_problems(as_of, prints)
    quarantined: dict[tuple[str, str], str] = {}
    failed_accounts: dict[str, str] = {}
    attributed: list[str] = []
    for validation in checkpoint_result.run_results.values():
        suite = validation.suite_name
        for result in validation.results:
            if result.success:
                continue
            config_ = result.expectation_config
            what = config_.description or config_.type
            error = _exception_message(result.exception_info)
            if error:
                global_failures.append(f"{suite}: {what}: could not be evaluated: {error}")
                continue
            if suite in QUARANTINE_SUITES:
                _quarantine(suite, what, result.result, quarantined, global_failures)
            else:
                line = f"{suite}: {what}: {_describe(result.result)}"
                global_failures.append(line)
                accounts = {} if what.startswith(NEVER_CONTAINED) else _accounts_of(result.result)
                if accounts:
                    attributed.append(line)
                for account, rows in accounts.items():
                    cause = f"{suite}: {what}: {_describe_rows(rows)}"
                    failed_accounts[account] = (
                        f"{failed_accounts[account]}; {cause}"
                        if account in failed_accounts
                        else cause
                    )
    blocking = [f for f in global_failures if f not in attributed]
    with database.transaction() as conn:
        audit_id = control.record_audit(
            conn, run_id, as_of, prints, len(blocking), quarantined, failed_accounts
        )
    audit = AuditResult(
        global_failures,
        quarantined,
        data_docs_index(),
        audit_id,
        failed_accounts=failed_accounts,
        attributed=attributed,
    )
    log.info("audit %d of %s (%s):\n%s", audit_id, as_of, run_id, audit.summary())
    return audit


def _candidate_problems(as_of: dt.date, prints: control.Fingerprint) -> list[str]:
    """Global failures about the candidate itself: built for another date, or rebuilt while
    the checkpoint read it (both mean another build interleaved with this run)."""
    problems = []
    dates = prints.as_of_dates()
    if dates and dates != {as_of.isoformat()}:
        problems.append(
            f"candidate: segments_audit was built for as-of {', '.join(sorted(dates))}, not "
            f"{as_of} (another run or a manual dbt build replaced it): rerun build and audit "
            f"for {as_of}"
        )
    with database.connect() as conn:
        changes = prints.differences(control.fingerprint(conn, _CANDIDATE))
    if changes:
        problems.append(
            "candidate: it changed while it was audited (another build ran): rerun build and "
            "audit. What changed: " + "; ".join(changes)
        )
    return problems


def _run_checkpoint(run_id: str, as_of: dt.date) -> Any:
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    context = gx.get_context(mode="file", context_root_dir=str(gx_root()))
    checkpoint = context.checkpoints.get(CHECKPOINT)
    return checkpoint.run(
        run_id=RunIdentifier(
            run_name=f"{as_of.isoformat()} {run_id}", run_time=dt.datetime.now(dt.UTC)
        )
    )


def _quarantine(
    suite: str,
    what: str,
    result: Mapping[str, Any],
    quarantined: dict[tuple[str, str], str],
    global_failures: list[str],
) -> None:
    rows = (result.get("details") or {}).get("unexpected_rows") or []
    observed = result.get("observed_value") or 0
    if observed > len(rows):
        # Hundreds of segments out of bounds at once is not a segment problem.
        global_failures.append(
            f"{suite}: {what}: {observed} segments failed; more than GX reports "
            f"({GX_MAX_DETAIL_ROWS}), treating it as a global failure"
        )
        return
    for row in rows:
        key = (row["account_id"], row["segment_key"])
        reason = str(row["reason"])
        quarantined[key] = f"{quarantined[key]}; {reason}" if key in quarantined else reason


def _accounts_of(result: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]]:
    """account -> its unexpected rows, when GX reported every unexpected row and each names
    an account; else {} (the failure is not one account's)."""
    rows = (result.get("details") or {}).get("unexpected_rows")
    observed = result.get("observed_value") or 0
    if rows is None:
        # A multicolumn check (duplicates) lists its unexpected values as column dicts.
        rows = result.get("partial_unexpected_list")
        observed = result.get("unexpected_count") or 0
    if not rows or observed > len(rows):
        return {}
    by_account: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        account = row.get("account_id") if isinstance(row, Mapping) else None
        if not account:
            return {}
        by_account.setdefault(str(account), []).append(row)
    return by_account


def _exception_message(info: Mapping[str, Any] | None) -> str | None:
    """GX nests exception info per metric when a metric fails; flatten to the first message."""
    if not info:
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message")).split("\n[SQL:")[0]
    for value in info.values():
        if isinstance(value, Mapping) and (message := _exception_message(value)):
            return message
    return None


def _describe_rows(rows: list[Mapping[str, Any]]) -> str:
    return _describe({"details": {"unexpected_rows": rows}, "observed_value": len(rows)})


def _describe(result: Mapping[str, Any]) -> str:
    rows = (result.get("details") or {}).get("unexpected_rows")
    if rows is not None:
        sample = ", ".join(
            "(" + ", ".join(f"{k}={v}" for k, v in row.items()) + ")" for row in rows[:3]
        )
        return f"{result.get('observed_value')} unexpected row(s), e.g. {sample}"
    if "unexpected_count" in result:
        sample = result.get("partial_unexpected_list") or []
        return f"{result['unexpected_count']} unexpected value(s), e.g. {sample[:3]}"
    return f"observed {result.get('observed_value')!r}"


def data_docs_index() -> Path | None:
    """The GX data docs' local site, once an audit has built it."""
    index = gx_root() / "uncommitted" / "data_docs" / "local_site" / "index.html"
    return index if index.is_file() else None
