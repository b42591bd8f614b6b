import base64
from collections.abc import Iterable, Sequence
from pathlib import Path

import dagster as dg


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) if len(lines) > 2 else "_none_"


def png_markdown(path: Path, title: str) -> dg.MetadataValue:
    """A PNG inlined in markdown, so the UI shows the picture itself."""
    data = base64.b64encode(path.read_bytes()).decode()
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{data})")
