"""Capture: turn a partition's raw records into trace rows, accounting for every one.

input = rows + quarantined + duplicates + do_not_train, always.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

from distill_pipeline.core.traces import (
    Rejected,
    TraceParseError,
    TraceRow,
    full_gc_paused,
    parse_line,
    parse_record,
)

# A raw line longer than this is kept in quarantine only as a prefix, so one
# runaway line cannot blow up the quarantine table.
MAX_RAW_KEPT = 64_000


@dataclass(frozen=True)
class RawRecord:
    """One input record before parsing."""

    file: str  # export file name, or the API listing it came from
    line: int  # 1-based line number (or position in the listing)
    raw: bytes | str | dict[str, Any]  # an export line, or an already-decoded API object


# Where traces come from (DISTILL_TRACE_SOURCE): a JSONL export, or OpenAI's Stored Completions API.
TraceSourceKind = Literal["jsonl", "openai"]
TRACE_SOURCES: tuple[TraceSourceKind, ...] = get_args(TraceSourceKind)


class TraceSource(Protocol):
    """Where a day's teacher traces come from (a JSONL export, the Stored Completions API)."""

    name: str

    def records(self, day: str) -> Iterable[RawRecord]: ...


@dataclass
class CaptureResult:
    rows: list[TraceRow] = field(default_factory=list)
    quarantined: list[Rejected] = field(default_factory=list)
    duplicates: list[Rejected] = field(default_factory=list)
    do_not_train: list[TraceRow] = field(default_factory=list)
    input_rows: int = 0

    @property
    def balanced(self) -> bool:
        return self.input_rows == len(self.rows) + len(self.quarantined) + len(self.duplicates) + len(self.do_not_train)

    @property
    def quarantine_share(self) -> float:
        return len(self.quarantined) / self.input_rows if self.input_rows else 0.0

    def reasons(self) -> dict[str, int]:
        """Quarantine counts by reason kind (the text before the first colon)."""
        counts: dict[str, int] = {}
        for rejected in self.quarantined:
            kind = rejected.reason.split(":")[0]
            counts[kind] = counts.get(kind, 0) + 1
        return dict(sorted(counts.items()))


def _storable(text: str) -> str:
    """Text that UTF-8 (and so Parquet) can hold: a lone surrogate becomes its escape, NUL becomes \\u0000."""
    text = text.replace("\x00", "\\u0000")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text


def _raw_text(raw: bytes | str | dict[str, Any]) -> str:
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", errors="replace")
    elif isinstance(raw, str):
        text = raw
    else:
        import json

        try:
            text = json.dumps(raw, ensure_ascii=False, sort_keys=True, default=str)
        except (RecursionError, TypeError, ValueError):  # too deep to serialise, or keys that cannot be sorted
            text = f"<a {type(raw).__name__} that cannot be shown as JSON (nested too deeply or odd keys)>"
    text = _storable(text)
    return text if len(text) <= MAX_RAW_KEPT else text[:MAX_RAW_KEPT] + f"... [{len(text)} chars]"


def _rejected(record: RawRecord, reason: str) -> Rejected:
    return Rejected(_storable(record.file), record.line, _storable(reason), _raw_text(record.raw))


def parse_raw(record: RawRecord) -> TraceRow:
    if isinstance(record.raw, dict):
        try:
            return parse_record(record.raw)
        except RecursionError:
            raise TraceParseError("JSON nested too deeply") from None
    return parse_line(record.raw)


def capture(records: Iterable[RawRecord]) -> CaptureResult:
    """Parse, de-duplicate (same id or same content hash; first one wins) and split off do-not-train rows."""
    with full_gc_paused():
        return _capture(records)


def _capture(records: Iterable[RawRecord]) -> CaptureResult:
    result = CaptureResult()
    seen_ids: set[str] = set()
    seen_hashes: set[str] = set()
    for record in records:
        result.input_rows += 1
        try:
            row = parse_raw(record)
        except TraceParseError as err:
            result.quarantined.append(_rejected(record, str(err)))
            continue
        if row.completion_id in seen_ids or row.content_hash in seen_hashes:
            what = "id" if row.completion_id in seen_ids else "content hash"
            result.duplicates.append(_rejected(record, f"duplicate {what} of an earlier row ({row.completion_id})"))
            continue
        seen_ids.add(row.completion_id)
        seen_hashes.add(row.content_hash)
        if row.do_not_train:
            result.do_not_train.append(row)
        else:
            result.rows.append(row)
    # A stable order (creation time, then id) makes reruns byte-identical whatever the source order.
    result.rows.sort(key=lambda r: (r.created_at, r.completion_id))
    return result


def iter_export_lines(name: str, data: bytes) -> Iterator[RawRecord]:
    """The records of one export file; blank lines are not records."""
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            yield RawRecord(name, number, line.rstrip(b"\r"))
