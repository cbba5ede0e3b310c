"""The rows of a lake zone, every record type, as dicts of the columns asked for (the
end-to-end tests count offsets and contents with them)."""

from __future__ import annotations

from typing import Any

from shared.lake import Lake, Zone, table_path
from shared.lake_tables import open_table
from shared.topics import RECORD_TYPES


def zone_rows(lake: Lake, zone: Zone, columns: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for record_type in RECORD_TYPES:
        table = open_table(lake, table_path(zone, record_type))
        if table is not None:
            rows += table.to_pyarrow_dataset().to_table(columns=columns).to_pylist()
    return rows
