"""The test oracle of the emulator's chunked reader: one post read the way the original
emulator read it, ``SELECT … ORDER BY <key> LIMIT 1 OFFSET n`` per table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from services.emulator.source_db import ORDER_COLUMN, TABLES
from shared.topics import RecordType


def read_post(engine: Engine, offset: int) -> dict[RecordType, dict[str, Any]]:
    """The pin, geo and user rows at one offset, datetimes as ISO 8601 (as the emulator sends
    them)."""
    post: dict[RecordType, dict[str, Any]] = {}
    with engine.connect() as conn:
        for record_type, table in TABLES.items():
            order = table.c[ORDER_COLUMN[record_type]]
            row = conn.execute(select(table).order_by(order).limit(1).offset(offset)).mappings()
            first = row.first()
            if first is not None:
                post[record_type] = {
                    k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in first.items()
                }
    return post


def row_count(engine: Engine) -> int:
    """Rows of the pin table."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(TABLES["pin"])).scalar_one())
