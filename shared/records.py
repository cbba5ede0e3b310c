"""The records' columns, declared once: raw (as the source database holds them) and clean (as
the cleaner emits them, in the fixed order of DESIGN.md), and the source's placeholder strings.

Every other form is derived from these tuples where it is used: the pydantic models
(:mod:`shared.models`), the Arrow schemas of the raw columns (:mod:`shared.cleaning_arrow`) and
of the lake's clean zone (:mod:`shared.lake_schema`), the source database's tables
(``services/emulator/source_db.py``) and the clean record's key order (:mod:`shared.cleaning`).
A column added here shows up in all of them (``tests/unit/test_records.py`` holds them to it).

This module declares; it imports no library and holds no rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.topics import RecordType

# "float_pair": ``[latitude, longitude]``, each of which may be null.
ColumnType = Literal["int", "text", "float", "timestamp", "float_pair"]


@dataclass(frozen=True)
class Column:
    """One column of a record. ``key``: the record's key, never null in a valid record (the
    source table's primary key; the clean zone's non-null ``ind``); every other column may be
    null."""

    name: str
    type: ColumnType
    key: bool = False


def _key(name: str) -> Column:
    return Column(name, "int", key=True)


def _text(*names: str) -> tuple[Column, ...]:
    return tuple(Column(name, "text") for name in names)


RAW_COLUMNS: dict[RecordType, tuple[Column, ...]] = {
    "pin": (
        _key("index"),
        *_text("unique_id", "title", "description", "poster_name"),
        Column("follower_count", "text"),  # "12k", "2M", "User Info Error": text at the source
        *_text("tag_list", "is_image_or_video", "image_src"),
        Column("downloaded", "int"),
        *_text("save_location", "category"),
    ),
    "geo": (
        _key("ind"),
        Column("timestamp", "timestamp"),
        Column("latitude", "float"),
        Column("longitude", "float"),
        Column("country", "text"),
    ),
    "user": (
        _key("ind"),
        *_text("first_name", "last_name"),
        Column("age", "int"),
        Column("date_joined", "timestamp"),
    ),
}

CLEAN_COLUMNS: dict[RecordType, tuple[Column, ...]] = {
    "pin": (
        _key("ind"),
        *_text("unique_id", "title", "description"),
        Column("follower_count", "int"),
        *_text("poster_name", "tag_list", "is_image_or_video", "image_src", "save_location"),
        Column("category", "text"),
    ),
    "geo": (
        _key("ind"),
        Column("country", "text"),
        Column("coordinates", "float_pair"),
        Column("timestamp", "timestamp"),
    ),
    "user": (
        _key("ind"),
        Column("user_name", "text"),
        Column("age", "int"),
        Column("date_joined", "timestamp"),
    ),
}

# The source database's table of each record type, as in the original.
SOURCE_TABLES: dict[RecordType, str] = {
    "pin": "pinterest_data",
    "geo": "geolocation_data",
    "user": "user_data",
}


def key_column(columns: tuple[Column, ...]) -> str:
    """The name of the record's key column."""
    (key,) = (column.name for column in columns if column.key)
    return key


# The raw record's key column of each type ("index" for pins, "ind" otherwise).
RAW_KEYS: dict[RecordType, str] = {
    record_type: key_column(columns) for record_type, columns in RAW_COLUMNS.items()
}

# The source's placeholders for "no data" (the original data's own strings). Which columns each
# one is nulled in is a cleaning rule: :mod:`shared.cleaning`.
NO_TITLE = "No Title Data Available"
NO_DESCRIPTION_STORY = "No description available Story format"
NO_DESCRIPTION = "No description available"
USER_INFO_ERROR = "User Info Error"  # poster_name and follower_count
NO_TAGS = "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"
IMAGE_SRC_ERROR = "Image src error."
