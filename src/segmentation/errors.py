"""Exception classes. Each message says what went wrong and what to do about it."""

from __future__ import annotations


class SegmentationError(Exception):
    """Base class for every error the pipeline raises on purpose."""


class PostgresNotFoundError(SegmentationError):
    """No PostgreSQL server binaries could be located."""


class DatabaseError(SegmentationError):
    """The database could not be reached or initialised."""


class DbtError(SegmentationError):
    """A dbt invocation failed."""


class UnknownSegmentError(SegmentationError):
    """`<account>/<key>` names no account or segment, or one that is disabled, not built for
    the account's package, or never published. The message says which (and did you mean)."""


class ScaffoldError(SegmentationError):
    """`segments init` could not write a new definition (bad name, or the file exists)."""


class DemoDataError(SegmentationError):
    """Demo data could not be generated or loaded."""


class DefinitionError(SegmentationError):
    """Segment definitions failed validation. `issues` holds every problem found."""

    def __init__(self, issues: list) -> None:  # list[definitions.issues.Issue]
        self.issues = list(issues)
        count = len(self.issues)
        lines = [f"{count} error{'s' if count != 1 else ''} in segment definitions:"]
        lines += [str(issue) for issue in self.issues]
        super().__init__("\n".join(lines))


class PublishError(SegmentationError):
    """The publish to segments_serving failed; serving still shows the previous version."""


class PublishRewindError(PublishError):
    """A publish for an as-of date older than the one serving already shows was refused."""


class HistoryError(SegmentationError):
    """Membership history could not be recorded; segments_history is unchanged."""


class HistoryBackfillError(HistoryError):
    """Recording an as-of date older than the latest recorded one was refused."""


class SecuritySetupError(SegmentationError):
    """Roles, grants or row-level security could not be set up."""


class AuditError(SegmentationError):
    """The audit found global failures (or could not run); nothing may be published."""


class QuarantineError(SegmentationError):
    """The run published, but some segments were quarantined and kept their last good version."""


class RunLockedError(SegmentationError):
    """Another pipeline run holds the candidate lease; this step did not run."""


class CandidateChangedError(PublishError):
    """The candidate is not the one the audit checked (rebuilt in between); nothing published."""


class ExportError(SegmentationError):
    """`segments export` refused: an unknown, never-published or stale segment; nothing written."""


class ChangeLimitError(SegmentationError):
    """`segments diff --fail-on-change-pct`: a segment would change by more than allowed."""


class ReportError(SegmentationError):
    """The report could not be built; serving and history are unaffected."""


class PreviewError(SegmentationError):
    """`segments preview` or `segments why` could not evaluate a segment (unknown account or
    contact, or the staged data it reads is missing); nothing was written."""


class NotStagedError(PreviewError):
    """The staged data a preview reads is not built yet (run `segments run` or `dbt build`)."""


class ClusterError(SegmentationError):
    """The clustering step could not run for an account; that account's clusters for the
    date are unchanged (each account is written in one transaction)."""


class AccountFailedError(SegmentationError):
    """One or more accounts could not be refreshed this run (a bad definition, a failing
    model, an audit or publish failure of their own); every other account was published.
    `failed` maps each failed account to its cause."""

    def __init__(self, failed: dict[str, str], as_of: object = None, extra: str = "") -> None:
        self.failed = dict(sorted(failed.items()))
        when = f" for {as_of}" if as_of is not None else ""
        lines = [
            f"{len(self.failed)} account(s) not refreshed{when}; the other accounts were "
            "published. Each kept its last publish, and its segments are marked stale with "
            "the cause:"
        ]
        lines += [f"  {account}: {cause}" for account, cause in self.failed.items()]
        lines.append(
            "Fix the cause (the account's definition, model, data or the audit failure "
            "above), then run that account again: `segments run --as-of <date> --account "
            "<account>` (or clear its DAG run); `segments status` shows what is stale."
        )
        if extra:
            lines.append(extra)
        super().__init__("\n".join(lines))


class AcceptError(SegmentationError):
    """`segments accept` refused or failed: an unknown or not-quarantined segment, or a
    candidate that is not the one the latest audit checked; serving is unchanged."""


class SourceEmptyError(SegmentationError):
    """A raw table the pipeline cannot run without (crm_raw.accounts, crm_raw.contacts) has no
    row; nothing was built or published."""


class ScheduleError(SegmentationError):
    """The DAG could not decide which accounts a run refreshes (accounts due for different
    as-of dates in one run, or an unknown account asked for); nothing was built."""


class DbtNodesFailedError(DbtError):
    """`dbt build` failed; `nodes` are the failed nodes (unique_id, tags, message), so the
    build step can tell which account owns each failure."""

    def __init__(self, message: str, nodes: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.nodes = nodes
