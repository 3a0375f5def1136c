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


class ScheduleError(SegmentationError):
    """The DAG could not decide which accounts a run refreshes (accounts due for different
    as-of dates in one run, or an unknown account asked for); nothing was built."""


class DbtNodesFailedError(DbtError):
    """`dbt build` failed; `nodes` are the failed nodes (unique_id, tags, message), so the
    build step can tell which account owns each failure."""

    def __init__(self, message: str, nodes: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.nodes = nodes


class AccountFailedError(SegmentationError):
    """Accounts of a run were not refreshed (an invalid definition of their own, a model of
    theirs that failed); the others published. The message names each account and the cause."""
