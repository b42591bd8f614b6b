"""Files under the storage root: atomic writes, Parquet tables, content hashes.

Every write goes to a temporary file in the same folder and is renamed into
place, so a killed run never leaves a partial file where a reader can see it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from distill_pipeline.core.traces import Rejected, TraceRow, trace_from_record, trace_to_record

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


def atomic_write_bytes(path: str | Path, data: bytes) -> Written:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Written(str(path), hashlib.sha256(data).hexdigest(), len(data))


def atomic_write_json(path: str | Path, value: Any) -> Written:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_table(path: str | Path, table: pa.Table) -> Written:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


def traces_table(rows: Iterable[TraceRow]) -> pa.Table:
    return pa.Table.from_pylist([trace_to_record(r) for r in rows], schema=TRACE_SCHEMA)


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

    def read_traces(self, asset: str, partition: str) -> list[TraceRow]:
        path = self.traces_path(asset, partition)
        if not path.exists():
            raise FileNotFoundError(
                f"{asset} has no data for partition {partition} under {self.root}: materialize it first")
        return [trace_from_record(r) for r in pq.read_table(path).to_pylist()]

    def trace_partitions(self, asset: str) -> list[str]:
        """Partitions of a trace asset that have a file, in order."""
        base = self.asset_dir(asset)
        if not base.exists():
            return []
        return sorted(p.name for p in base.iterdir() if (p / f"{asset}.parquet").exists())


def write_records(path: str | Path, records: list[dict[str, Any]], schema: pa.Schema) -> Written:
    return atomic_write_table(path, pa.Table.from_pylist(records, schema=schema))


def read_records(path: str | Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()


class JsonFileCache(dict):
    """A dict persisted as one JSON file (the LLM judge's cache: a rerun does not pay twice)."""

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        if self.path.exists():
            self.update(json.loads(self.path.read_text()))

    def save(self) -> None:
        atomic_write_json(self.path, dict(self))
