"""Files under the storage root: atomic writes, Parquet tables, content hashes.

Every write goes to a temporary file in the same folder and is renamed into
place, so a killed run never leaves a partial file where a reader can see it.
"""

from __future__ import annotations

import glob
import hashlib
import heapq
import json
import os
import shutil
import tempfile
import time
from collections.abc import Container, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from distill_pipeline.core.traces import Rejected, TraceRow, full_gc_paused, trace_from_record, trace_to_record

TRACE_SCHEMA = pa.schema([
    ("completion_id", pa.string()),
    ("created_at", pa.timestamp("s", tz="UTC")),
    ("model", pa.string()),
    ("intent", pa.string()),
    ("metadata", pa.map_(pa.string(), pa.string())),
    ("request_messages", pa.string()),
    ("response_message", pa.string()),
    ("tools", pa.string()),
    ("prompt_tokens", pa.int64()),
    ("completion_tokens", pa.int64()),
    ("cached_tokens", pa.int64()),
    ("content_hash", pa.string()),
    ("source", pa.string()),
])

QUARANTINE_SCHEMA = pa.schema([
    ("file", pa.string()),
    ("line", pa.int64()),
    ("kind", pa.string()),  # quarantined | duplicate
    ("reason", pa.string()),
    ("raw", pa.string()),
])


@dataclass(frozen=True)
class Written:
    path: str
    sha256: str
    bytes: int


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# A temporary file this old was left by a killed run (a live write renames its own within seconds).
STALE_TMP_S = 3600


def _temp_file(path: Path) -> tuple[int, str]:
    """A new temporary file beside `path` (fd, name), after removing this target's stale ones."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - STALE_TMP_S
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if stale.stat().st_mtime < cutoff:
                stale.unlink()
        except OSError:  # gone already, or not ours to remove: never a reason to fail the write
            pass
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> Written:
    return atomic_write_chunks(path, (data,))


def atomic_write_chunks(path: str | Path, chunks: Iterable[bytes]) -> Written:
    """atomic_write_bytes(path, b"".join(chunks)) without ever holding the whole content in memory."""
    path = Path(path)
    fd, tmp = _temp_file(path)
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Written(str(path), digest.hexdigest(), size)


def atomic_write_json(path: str | Path, value: Any) -> Written:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_table(path: str | Path, table: pa.Table) -> Written:
    path = Path(path)
    fd, tmp = _temp_file(path)
    os.close(fd)
    try:
        # No statistics timestamps or writer-dependent extras: equal tables give equal bytes.
        pq.write_table(table, tmp, compression="zstd", write_statistics=True, store_schema=True)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Written(str(path), sha256_file(path), path.stat().st_size)


def _table(records: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """What `pa.Table.from_pylist(records, schema=schema)` gives, built a column at a time (several times faster)."""
    with full_gc_paused():
        return pa.Table.from_pydict({name: [r.get(name) for r in records] for name in schema.names}, schema=schema)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECONDS = {"s": 1_000_000, "ms": 1_000, "us": 1}


def _column_values(column: pa.ChunkedArray) -> list[Any]:
    """`column.to_pylist()`, with UTC timestamps converted without pyarrow's per-value time zone lookup."""
    kind = column.type
    if pa.types.is_timestamp(kind) and kind.tz == "UTC" and kind.unit in _MICROSECONDS:
        scale = _MICROSECONDS[kind.unit]
        return [None if v is None else _EPOCH + timedelta(microseconds=v * scale)
                for v in column.cast(pa.int64()).to_pylist()]
    return column.to_pylist()


def _shared_values(column: pa.ChunkedArray) -> list[Any]:
    """`column.to_pylist()` with one Python object per distinct value (through a dictionary encoding)."""
    encoded = column.combine_chunks().dictionary_encode()
    values = encoded.dictionary.to_pylist()
    return [None if i is None else values[i] for i in encoded.indices.to_pylist()]


def _pylist(table: pa.Table) -> list[dict[str, Any]]:
    """The rows of a table as dicts (`table.to_pylist()`), converted a column at a time."""
    if not table.num_columns:
        return [{} for _ in range(table.num_rows)]
    with full_gc_paused():
        columns = [_column_values(table.column(i)) for i in range(table.num_columns)]
        names = table.column_names
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def traces_table(rows: Iterable[TraceRow]) -> pa.Table:
    with full_gc_paused():
        return _table([trace_to_record(r) for r in rows], TRACE_SCHEMA)


def rejected_table(quarantined: Iterable[Rejected], duplicates: Iterable[Rejected]) -> pa.Table:
    records = [{"file": r.file, "line": r.line, "kind": "quarantined", "reason": r.reason, "raw": r.raw}
               for r in quarantined]
    records += [{"file": r.file, "line": r.line, "kind": "duplicate", "reason": r.reason, "raw": r.raw}
                for r in duplicates]
    return pa.Table.from_pylist(records, schema=QUARANTINE_SCHEMA)


class StorageLayout:
    """Where each asset's files live under the storage root."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def partition_dir(self, asset: str, partition: str) -> Path:
        return self.root / asset / partition

    def asset_dir(self, asset: str) -> Path:
        return self.root / asset

    def traces_path(self, asset: str, partition: str) -> Path:
        return self.partition_dir(asset, partition) / f"{asset}.parquet"

    def write_traces(self, asset: str, partition: str, rows: Iterable[TraceRow]) -> Written:
        return atomic_write_table(self.traces_path(asset, partition), traces_table(rows))

    def _existing_traces_path(self, asset: str, partition: str) -> Path:
        path = self.traces_path(asset, partition)
        if not path.exists():
            raise FileNotFoundError(
                f"{asset} has no data for partition {partition} under {self.root}: materialize it first")
        return path

    def read_traces(self, asset: str, partition: str) -> list[TraceRow]:
        path = self._existing_traces_path(asset, partition)
        with full_gc_paused():
            return [trace_from_record(r) for r in _pylist(pq.read_table(path))]

    def read_trace_table(self, asset: str, partition: str, columns: Sequence[str] | None = None) -> pa.Table:
        """The trace table itself (or some of its columns), for work that needs no TraceRow per row."""
        return pq.read_table(self._existing_traces_path(asset, partition),
                             columns=list(columns) if columns is not None else None)

    def write_trace_table(self, asset: str, partition: str, table: pa.Table) -> Written:
        """Write a table in the trace-row contract (e.g. a filtered read of another trace asset)."""
        table = with_cached_tokens(table)
        if table.schema.names != TRACE_SCHEMA.names:
            raise ValueError(f"{asset}: not a trace table (columns {table.schema.names})")
        # Parquet has no second-resolution timestamps (created_at comes back in ms): the contract's types again,
        # so the file is the one write_traces would write.
        table = table.cast(TRACE_SCHEMA)
        return atomic_write_table(self.traces_path(asset, partition), table)

    def count_traces(self, asset: str, partition: str) -> int:
        """Rows in a partition's trace file, from the Parquet footer (no data read)."""
        return pq.ParquetFile(self._existing_traces_path(asset, partition)).metadata.num_rows

    def read_trace_columns(self, asset: str, partition: str, columns: Sequence[str],
                           few_values: Container[str] = ()) -> dict[str, list[Any]]:
        """Some columns of a trace table (e.g. ids, hashes, intents) without reading the messages."""
        return read_columns(self._existing_traces_path(asset, partition), columns, few_values)

    def iter_traces_matching(self, asset: str, partition: str, content_hashes: Container[str],
                             batch_size: int = 2048) -> Iterator[tuple[int, TraceRow]]:
        """(row position, row) for the rows whose content hash is in `content_hashes`, in file order, read a
        batch at a time: only the matching rows ever become TraceRows."""
        handle = pq.ParquetFile(self._existing_traces_path(asset, partition))
        position = 0
        for batch in handle.iter_batches(batch_size=batch_size):
            hashes = batch.column(batch.schema.get_field_index("content_hash")).to_pylist()
            picked = [i for i, digest in enumerate(hashes) if digest in content_hashes]
            if picked:
                records = _pylist(pa.Table.from_batches([batch]).take(picked))
                for i, record in zip(picked, records, strict=True):
                    yield position + i, trace_from_record(record)
            position += batch.num_rows

    def trace_partitions(self, asset: str) -> list[str]:
        """Partitions of a trace asset that have a file, in order."""
        base = self.asset_dir(asset)
        if not base.exists():
            return []
        return sorted(p.name for p in base.iterdir() if (p / f"{asset}.parquet").exists())


def with_cached_tokens(table: pa.Table) -> pa.Table:
    """A trace table written before the contract had `cached_tokens`, with the column added as 0s (what the
    parser gives a trace whose usage reports no cached tokens); any other table as it is."""
    names = table.schema.names
    if "cached_tokens" in names or names != [n for n in TRACE_SCHEMA.names if n != "cached_tokens"]:
        return table
    return table.add_column(TRACE_SCHEMA.get_field_index("cached_tokens"), TRACE_SCHEMA.field("cached_tokens"),
                            pa.array([0] * table.num_rows, pa.int64()))


def write_records(path: str | Path, records: list[dict[str, Any]], schema: pa.Schema) -> Written:
    return atomic_write_table(path, _table(records, schema))


def read_records(path: str | Path) -> list[dict[str, Any]]:
    return _pylist(pq.read_table(path))


def write_columns(path: str | Path, columns: dict[str, list[Any]], schema: pa.Schema) -> Written:
    with full_gc_paused():
        return atomic_write_table(path, pa.Table.from_pydict({name: columns[name] for name in schema.names},
                                                             schema=schema))


def read_columns(path: str | Path, columns: Sequence[str], few_values: Container[str] = ()) -> dict[str, list[Any]]:
    """Some columns of a table as Python lists. In the `few_values` columns (e.g. intent) equal values are one
    shared object, not one object per row."""
    table = pq.read_table(path, columns=list(columns))
    with full_gc_paused():
        return {name: _shared_values(table.column(name)) if name in few_values else _column_values(table.column(name))
                for name in columns}


class SortedSpill:
    """Records (key, payload) added in any order and read back in key order, holding at most about `budget`
    bytes in memory: beyond that they wait on disk in sorted runs (an external merge sort) under a temporary
    folder in `directory`, removed on close. Keys must be unique and hold no tab or newline; payloads hold no
    newline."""

    def __init__(self, directory: str | Path, budget: int = 64 << 20):
        self.directory = Path(directory)
        self.budget = budget
        self._records: list[tuple[bytes, bytes]] = []
        self._size = 0
        self._runs: list[Path] = []
        self._tmp: str | None = None

    def add(self, key: bytes, payload: bytes) -> None:
        if b"\n" in payload or b"\n" in key or b"\t" in key:
            raise ValueError("a spilled key holds a tab or newline, or its payload a newline")
        self._records.append((key, payload))
        self._size += len(key) + len(payload) + 100  # + the tuple and bytes object overheads
        if self._size >= self.budget:
            self._spill()

    def _spill(self) -> None:
        if self._tmp is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._tmp = tempfile.mkdtemp(prefix=".spill.", dir=self.directory)
        self._records.sort()
        path = Path(self._tmp) / f"run-{len(self._runs):06d}"
        with open(path, "wb") as handle:
            for key, payload in self._records:
                handle.write(key + b"\t" + payload + b"\n")
        self._runs.append(path)
        self._records, self._size = [], 0

    @staticmethod
    def _read_run(handle: Any) -> Iterator[tuple[bytes, bytes]]:
        for line in handle:
            key, _, payload = line.rstrip(b"\n").partition(b"\t")
            yield key, payload

    def payloads(self) -> Generator[bytes, None, None]:
        """Every payload, in key order (close it to release the run files early)."""
        self._records.sort()
        handles = [open(path, "rb") for path in self._runs]
        try:
            for _, payload in heapq.merge(*(self._read_run(h) for h in handles), iter(self._records)):
                yield payload
        finally:
            for handle in handles:
                handle.close()

    def close(self) -> None:
        self._records = []
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> SortedSpill:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class JsonFileCache(dict):
    """A dict persisted as one JSON file (the LLM judge's cache: a rerun does not pay twice)."""

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        if self.path.exists():
            self.update(json.loads(self.path.read_text()))

    def save(self) -> None:
        atomic_write_json(self.path, dict(self))
