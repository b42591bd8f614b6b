"""The JSONL export source: partition D reads exactly the files whose names start with D."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from distill_pipeline.core.capture import RawRecord


class JsonlExportSource:
    name = "jsonl"

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def files(self, day: str) -> list[Path]:
        if not self.directory.is_dir():
            raise FileNotFoundError(
                f"trace export directory {self.directory} does not exist; set DISTILL_TRACES_DIR to a folder of "
                "YYYY-MM-DD*.jsonl files")
        return sorted(p for p in self.directory.iterdir() if p.name.startswith(day) and p.name.endswith(".jsonl"))

    def days(self) -> list[str]:
        """The days that have at least one export file (what the demo materializes)."""
        return sorted({p.name[:10] for p in self.directory.glob("????-??-??*.jsonl")})

    def records(self, day: str) -> Iterator[RawRecord]:
        for path in self.files(day):
            # Stream line by line so a large export never sits in memory whole.
            with open(path, "rb") as handle:
                for number, line in enumerate(handle, start=1):
                    line = line.rstrip(b"\r\n")
                    if line.strip():
                        yield RawRecord(path.name, number, line)
