"""The source database: the original three tables, their columns and types, and row reads.

Works with any SQLAlchemy URL (SQLite by default; MySQL and PostgreSQL like the original RDS).
``follower_count`` is text and timestamps are DATETIME, as in the original.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    func,
    inspect,
    select,
)

from shared.topics import RecordType

metadata = MetaData()

pinterest_data = Table(
    "pinterest_data",
    metadata,
    Column("index", Integer, primary_key=True, autoincrement=False),
    Column("unique_id", Text),
    Column("title", Text),
    Column("description", Text),
    Column("poster_name", Text),
    Column("follower_count", Text),
    Column("tag_list", Text),
    Column("is_image_or_video", Text),
    Column("image_src", Text),
    Column("downloaded", Integer),
    Column("save_location", Text),
    Column("category", Text),
)

geolocation_data = Table(
    "geolocation_data",
    metadata,
    Column("ind", Integer, primary_key=True, autoincrement=False),
    Column("timestamp", DateTime),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("country", Text),
)

user_data = Table(
    "user_data",
    metadata,
    Column("ind", Integer, primary_key=True, autoincrement=False),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("age", Integer),
    Column("date_joined", DateTime),
)

TABLES: dict[RecordType, Table] = {
    "pin": pinterest_data,
    "geo": geolocation_data,
    "user": user_data,
}
ORDER_COLUMN: dict[RecordType, str] = {"pin": "index", "geo": "ind", "user": "ind"}


def connect(url: str) -> Engine:
    return create_engine(url, future=True)


def has_tables(engine: Engine) -> bool:
    names = set(inspect(engine).get_table_names())
    return all(table.name in names for table in TABLES.values())


def row_count(engine: Engine) -> int:
    """Rows of pinterest_data: the emulator picks offsets below it."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(pinterest_data)).scalar_one())


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Datetimes as ISO 8601, as the emulator sends them."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def read_post(engine: Engine, offset: int) -> dict[RecordType, dict[str, Any]]:
    """The pin, geo and user rows at one offset, like ``SELECT … LIMIT offset, 1``."""
    post: dict[RecordType, dict[str, Any]] = {}
    with engine.connect() as conn:
        for record_type, table in TABLES.items():
            order = table.c[ORDER_COLUMN[record_type]]
            row = (
                conn.execute(select(table).order_by(order).limit(1).offset(offset))
                .mappings()
                .first()
            )
            if row is not None:
                post[record_type] = _jsonable(dict(row))
    return post
