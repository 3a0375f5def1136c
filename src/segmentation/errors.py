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


class DemoDataError(SegmentationError):
    """Demo data could not be generated or loaded."""
