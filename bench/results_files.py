"""Writing a benchmark's results: ``<name>.md``, the report, beside ``<name>.json``, the data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_results(folder: Path, name: str, report: str, data: Any, indent: int = 2) -> None:
    """Write ``report`` to ``folder/<name>.md`` and ``data`` as JSON to ``folder/<name>.json``
    (values JSON cannot hold are written as their ``str``), making ``folder`` if need be."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.md").write_text(report)
    (folder / f"{name}.json").write_text(json.dumps(data, indent=indent, default=str))
