"""The source database: the original three tables, their columns and types, and row reads.

Works with any SQLAlchemy URL (SQLite by default; MySQL and PostgreSQL like the original RDS).
The tables are derived from the raw columns of :mod:`shared.records`: ``follower_count`` is
text and timestamps are DATETIME, as in the original.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Double,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    inspect,
    select,
)
from sqlalchemy.types import TypeEngine

from shared.records import RAW_COLUMNS, RAW_KEYS, SOURCE_TABLES, ColumnType
from shared.topics import RecordType

# The source database's type of each column type (``float``: double precision, so that four
# decimals round-trip on every database).
SQL_TYPES: dict[ColumnType, type[TypeEngine[Any]]] = {
    "int": Integer,
    "text": Text,
    "float": Double,
    "timestamp": DateTime,
}
metadata = MetaData()


def _table(record_type: RecordType) -> Table:
    """The record's table, its key the primary key (given, never generated)."""
    columns = [
        Column(column.name, SQL_TYPES[column.type], primary_key=True, autoincrement=False)
        if column.key
        else Column(column.name, SQL_TYPES[column.type])
        for column in RAW_COLUMNS[record_type]
    ]
    return Table(SOURCE_TABLES[record_type], metadata, *columns)


TABLES: dict[RecordType, Table] = {record_type: _table(record_type) for record_type in RAW_COLUMNS}
ORDER_COLUMN: dict[RecordType, str] = RAW_KEYS  # rows are read in key order


def connect(url: str) -> Engine:
    return create_engine(url, future=True)


def has_tables(engine: Engine) -> bool:
    names = set(inspect(engine).get_table_names())
    return all(table.name in names for table in TABLES.values())


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Datetimes as ISO 8601, as the emulator sends them."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


class RowReader:
    """Reads the rows at given offsets of the three tables, like ``SELECT … ORDER BY key LIMIT
    offset, 1`` on each table, but a whole chunk of offsets in one query per table: the ordered
    keys of each table are read once, up front."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        with engine.connect() as conn:
            self.keys: dict[RecordType, list[Any]] = {
                record_type: list(
                    conn.execute(
                        select(table.c[ORDER_COLUMN[record_type]]).order_by(
                            table.c[ORDER_COLUMN[record_type]]
                        )
                    ).scalars()
                )
                for record_type, table in TABLES.items()
            }

    @property
    def rows(self) -> int:
        return len(self.keys["pin"])

    def read(self, offsets: list[int]) -> list[dict[RecordType, dict[str, Any]]]:
        posts: list[dict[RecordType, dict[str, Any]]] = [{} for _ in offsets]
        with self.engine.connect() as conn:
            for record_type, table in TABLES.items():
                keys = self.keys[record_type]
                column = table.c[ORDER_COLUMN[record_type]]
                wanted = {keys[o] for o in offsets if o < len(keys)}
                found = {
                    row[ORDER_COLUMN[record_type]]: _jsonable(dict(row))
                    for row in conn.execute(select(table).where(column.in_(wanted))).mappings()
                }
                for post, offset in zip(posts, offsets, strict=True):
                    if offset < len(keys) and keys[offset] in found:
                        post[record_type] = found[keys[offset]]
        return posts


def read_all(engine: Engine) -> dict[RecordType, list[dict[str, Any]]]:
    """Every row of the three tables (for ``pinpipe emulator stats``)."""
    with engine.connect() as conn:
        return {
            record_type: [dict(row) for row in conn.execute(select(table)).mappings()]
            for record_type, table in TABLES.items()
        }
