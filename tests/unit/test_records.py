"""Every form of a record is derived from its one declaration in ``shared.records``: the pydantic
models, the Arrow schemas, the source database's tables and the clean record's key order name
the same columns in the same order, with the key where the declaration puts it."""

from __future__ import annotations

import pyarrow as pa
import pytest

from services.emulator.source_db import TABLES
from shared.cleaning import CLEAN_KEYS, clean
from shared.cleaning_arrow import RAW_ARROW_SCHEMAS, clean_arrow
from shared.lake_schema import CLEAN_RECORD_SCHEMAS, CLEAN_SCHEMAS, META_FIELDS
from shared.models import CLEAN_MODELS, RAW_MODELS
from shared.records import (
    CLEAN_COLUMNS,
    RAW_COLUMNS,
    RAW_KEYS,
    SOURCE_TABLES,
    Column,
    key_column,
)
from shared.topics import RECORD_TYPES, RecordType


def _names(columns: tuple[Column, ...]) -> list[str]:
    return [column.name for column in columns]


def test_every_record_type_is_declared_in_both_zones() -> None:
    assert tuple(RAW_COLUMNS) == tuple(CLEAN_COLUMNS) == tuple(SOURCE_TABLES) == RECORD_TYPES


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_raw_forms_name_the_declared_columns_in_order(record_type: RecordType) -> None:
    declared = _names(RAW_COLUMNS[record_type])
    assert list(RAW_MODELS[record_type].model_fields) == declared
    assert RAW_ARROW_SCHEMAS[record_type].names == declared
    table = TABLES[record_type]
    assert table.name == SOURCE_TABLES[record_type]
    assert [column.name for column in table.columns] == declared
    assert [column.name for column in table.primary_key] == [RAW_KEYS[record_type]]
    model_key = [n for n, f in RAW_MODELS[record_type].model_fields.items() if f.is_required()]
    assert model_key == [key_column(RAW_COLUMNS[record_type])]


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_clean_forms_name_the_declared_columns_in_order(record_type: RecordType) -> None:
    declared = _names(CLEAN_COLUMNS[record_type])
    assert list(CLEAN_MODELS[record_type].model_fields) == declared
    assert CLEAN_RECORD_SCHEMAS[record_type].names == declared
    assert CLEAN_SCHEMAS[record_type].names == [*declared, *(f.name for f in META_FIELDS)]
    assert list(CLEAN_KEYS[record_type]) == declared
    not_null = [f.name for f in CLEAN_RECORD_SCHEMAS[record_type] if not f.nullable]
    assert not_null == [key_column(CLEAN_COLUMNS[record_type])]


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_both_cleanings_emit_the_declared_columns(record_type: RecordType) -> None:
    raw = {RAW_KEYS[record_type]: 1}
    declared = _names(CLEAN_COLUMNS[record_type])
    for profile in ("standard", "legacy"):
        assert list(clean(record_type, raw, profile)) == declared
        table = pa.Table.from_pylist([raw], schema=RAW_ARROW_SCHEMAS[record_type])
        assert clean_arrow(record_type, table, profile).table.schema.names == declared
