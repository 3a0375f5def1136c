"""`segments export`: one published segment (or the recipients of one channel) to CSV, XLSX
or Parquet, exactly as serving shows it.

The rows stream: one repeatable-read, read-only transaction reads the catalogue row and then
the members through a server-side (named) cursor, CHUNK rows at a time, and each chunk goes
straight to the writer (csv, openpyxl's write-only workbook, pyarrow's ParquetWriter), so a
segment of a million contacts never sits in memory. A stale segment is refused unless
allowed; nothing is written for a refused export.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import psycopg
from psycopg import sql

from segmentation import settings
from segmentation.errors import DefinitionError, ExportError
from segmentation.language.suggest import did_you_mean
from segmentation.steps import definitions
from segmentation.steps.pipeline import today
from segmentation.warehouse import database

log = logging.getLogger(__name__)

FORMATS = ("csv", "xlsx", "parquet")
CHANNELS = ("whatsapp", "email", "sms")
CHUNK = 10_000
STAGED_CONTACTS = f"{settings.SCHEMA_STAGING}.stg_crm__contacts"
MEMBER_COLUMNS = ("contact_id", "full_name", "member_since", "whatsapp", "email", "sms")
RECIPIENT_COLUMNS = ("contact_id", "full_name", "channel", "address")
_NO_CONTACTS = sql.SQL(
    "(select null::text as account_id, null::text as contact_id, null::text as full_name "
    "where false)"
)


@dataclass(frozen=True)
class ExportResult:
    account: str
    key: str
    rows: int
    columns: tuple[str, ...]
    path: Path | None  # None: written to the stream given
    as_of: dt.date | None
    stale: bool
    channel: str | None = None


class _Writer(Protocol):
    def write(self, rows: Sequence[tuple[Any, ...]]) -> None: ...
    def close(self) -> None: ...


def export(
    target: str,
    fmt: str,
    out: Path | IO[str] | None = None,
    *,
    channel: str | None = None,
    allow_stale: bool = False,
    chunk_size: int = CHUNK,
) -> ExportResult:
    """Write the published membership of `<account>/<key>` (or its `channel` recipients).

    `out`: a file path, or (csv only) an open text stream; None writes
    `<account>__<key>[__<channel>].<fmt>` in the current directory. Raises ExportError for an
    unknown segment (with a did-you-mean), one never published, or a stale one without
    `allow_stale`; the file is then not created."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format '{fmt}'{did_you_mean(fmt, FORMATS)}")
    if channel is not None and channel not in CHANNELS:
        raise ExportError(f"unknown channel '{channel}'{did_you_mean(channel, CHANNELS)}")
    account, _, key = target.partition("/")
    if not account or not key:
        raise ExportError(f"{target}: name a segment as <account>/<key>, e.g. acme/vip")
    if out is None:
        out = Path(f"{account}__{key}{'__' + channel if channel else ''}.{fmt}")
    if not isinstance(out, Path) and fmt != "csv":
        raise ExportError(f"{fmt} needs a file: pass --out FILE")
    params = {"account_id": account, "segment_key": key, "channel": channel}
    with database.connect() as conn:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            database.run_sql(conn, "planner.sql", "no_nested_loops")
            row = _run(conn, "segment", params).fetchone()
            if row is None:
                raise ExportError(_unknown(conn, account, key))
            _name, _count, as_of, published_at, stale, reason = row
            if published_at is None:
                raise ExportError(
                    f"{target} has never been published (its first audit quarantined it: "
                    f"{reason}); there is nothing to export. Fix it and run `segments run`."
                )
            if stale and not allow_stale:
                days = (today() - as_of).days
                raise ExportError(
                    f"{target} is stale ({reason}): its membership is {days} day(s) old "
                    f"(as of {as_of}); pass --allow-stale to export it anyway."
                )
            columns = RECIPIENT_COLUMNS if channel else MEMBER_COLUMNS
            writer = _open(fmt, out, columns)
            rows = 0
            try:
                for chunk in _chunks(
                    conn, "recipients" if channel else "members", params, chunk_size
                ):
                    writer.write(chunk)
                    rows += len(chunk)
            except BaseException:
                writer.close()
                if isinstance(out, Path):
                    out.unlink(missing_ok=True)
                raise
            writer.close()
    log.info("exported %d row(s) of %s to %s", rows, target, out)
    return ExportResult(
        account,
        key,
        rows,
        columns,
        out if isinstance(out, Path) else None,
        as_of,
        bool(stale),
        channel,
    )


def _run(
    conn: psycopg.Connection, query: str, params: dict[str, Any], **relations: sql.Composable
) -> psycopg.Cursor:
    return database.run_sql(conn, "export.sql", query, params, **relations)


def _unknown(conn: psycopg.Connection, account: str, key: str) -> str:
    """Why `account/key` is not in serving: an unknown account or segment, or one that is
    defined but not published yet."""
    accounts = [r[0] for r in _run(conn, "accounts", {})]
    published = [r[0] for r in _run(conn, "account_segments", {"account_id": account})]
    # Templates apply to an account serving knows; a misspelt account has only its own files.
    defined = _defined_keys(account, templates=account in accounts)
    if key in defined:
        return (
            f"{account}/{key} has never been published: it is defined but no run has "
            "published it yet. Run `segments run`, then export."
        )
    if account not in accounts and not defined:
        hint = did_you_mean(account, accounts)
        return f"unknown account '{account}': nothing is published for it{hint}"
    hint = did_you_mean(key, sorted(set(published) | defined))
    return f"unknown segment '{key}' for account '{account}'{hint}"


def _defined_keys(account: str, templates: bool) -> set[str]:
    """The enabled keys the definitions declare for `account` (its own, and the templates'
    when `templates`), read without the database; empty when they cannot be read."""
    try:
        plan = definitions.compile(offline=True)
    except DefinitionError:
        return set()
    scopes = (account, "*") if templates else (account,)
    return {s.key for s in plan.segments if s.account in scopes and s.enabled}


def _chunks(
    conn: psycopg.Connection, query: str, params: dict[str, Any], size: int
) -> Iterator[list[tuple[Any, ...]]]:
    exists = conn.execute("select to_regclass(%s) is not null", (STAGED_CONTACTS,)).fetchone()[0]
    contacts = sql.Identifier(*STAGED_CONTACTS.split(".")) if exists else _NO_CONTACTS
    (statement,) = database.statements("export.sql", query, contacts=contacts)
    with conn.cursor(name=f"segments_export_{os.getpid()}") as cursor:
        cursor.itersize = size
        cursor.execute(statement, params)
        while chunk := cursor.fetchmany(size):
            yield chunk


def _open(fmt: str, out: Path | IO[str], columns: Sequence[str]) -> _Writer:
    if fmt == "csv":
        return _CsvWriter(out, columns)
    assert isinstance(out, Path)
    if fmt == "xlsx":
        return _XlsxWriter(out, columns)
    return _ParquetWriter(out, columns)


class _CsvWriter:
    def __init__(self, out: Path | IO[str], columns: Sequence[str]) -> None:
        self._file = out.open("w", newline="", encoding="utf-8") if isinstance(out, Path) else out
        self._own = isinstance(out, Path)
        self._csv = csv.writer(self._file)
        self._csv.writerow(columns)

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self._csv.writerows(rows)

    def close(self) -> None:
        if self._own:
            self._file.close()
        else:
            self._file.flush()


class _XlsxWriter:
    """openpyxl's write-only workbook: rows go to a temporary file as they come."""

    def __init__(self, out: Path, columns: Sequence[str]) -> None:
        from openpyxl import Workbook

        self._out = out
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet("members")
        self._sheet.append(list(columns))

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        for row in rows:
            self._sheet.append(list(row))

    def close(self) -> None:
        self._book.save(self._out)


class _ParquetWriter:
    """One row group per chunk."""

    def __init__(self, out: Path, columns: Sequence[str]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        types = {"member_since": pa.date32()}
        self._schema = pa.schema([(c, types.get(c, pa.string())) for c in columns])
        self._writer = pq.ParquetWriter(out, self._schema)

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        arrays = [
            self._pa.array([r[i] for r in rows], type=f.type) for i, f in enumerate(self._schema)
        ]
        self._writer.write_batch(self._pa.RecordBatch.from_arrays(arrays, schema=self._schema))

    def close(self) -> None:
        self._writer.close()
