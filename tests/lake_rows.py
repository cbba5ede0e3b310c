"""The rows of a lake zone, every record type and date, as dicts of the columns asked for (the
end-to-end tests count offsets and contents with them)."""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq

from shared.lake import Lake


def zone_rows(lake: Lake, zone: str, columns: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in lake.fs.glob(lake.path(f"{zone}/*/date=*/*.parquet")):
        with lake.fs.open(path, "rb") as handle:
            rows += pq.read_table(handle, columns=columns).to_pylist()
    return rows
