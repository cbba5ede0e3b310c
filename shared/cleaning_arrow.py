"""The cleaning rules of :mod:`shared.cleaning`, vectorised over Arrow (for the Spark backfill's
``mapInArrow`` and other bulk jobs): no Python per row.

Input: a table or record batch of raw records with the typed columns of
:data:`RAW_ARROW_SCHEMAS` (missing columns are read as nulls; the JSON decoding that produced it
already holds the types, so timestamps come as UTC instants). Output: :class:`ArrowCleaned`,
the clean rows in the clean zone's columns (without the lake's metadata columns) with the input
row each came from, and the rejected rows with the :class:`~shared.cleaning.BadRecord` reason
the per-record version gives.

For every row, ``clean_arrow`` and ``shared.cleaning.clean`` on the same row agree: the same
clean values, or the same rejection reason (a property test holds them to it).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from shared.cleaning import (
    FOLLOWERS_PATTERN,
    LEGACY_MAX_DIGITS,
    LEGACY_PLACEHOLDERS,
    PLACEHOLDERS,
    SAVE_LOCATION_PREFIX,
    UNITS,
    WHITESPACE,
)
from shared.lake_schema import CLEAN_RECORD_SCHEMAS, parse_json_values
from shared.profiles import PROFILES, Profile
from shared.records import CLEAN_COLUMNS, RAW_COLUMNS, RAW_KEYS, ColumnType
from shared.topics import RecordType

_TEXT = pa.string()
# The raw columns' Arrow type of each column type: timestamps are UTC instants. Every raw column,
# the key too, is nullable: a record without its key is read, then rejected as ``missing_ind``.
RAW_ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    "int": pa.int64(),
    "text": _TEXT,
    "float": pa.float64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
RAW_ARROW_SCHEMAS: dict[RecordType, pa.Schema] = {
    record_type: pa.schema([(column.name, RAW_ARROW_TYPES[column.type]) for column in columns])
    for record_type, columns in RAW_COLUMNS.items()
}
# The pin's text columns that pass through the text rule of each profile (``save_location``
# has a rule of its own).
PIN_TEXT_COLUMNS = tuple(
    column.name
    for column in CLEAN_COLUMNS["pin"]
    if column.type == "text" and column.name != "save_location"
)
# FOLLOWERS_PATTERN with named groups, for RE2's extract_regex (same language otherwise).
_FOLLOWERS_NAMED = (
    FOLLOWERS_PATTERN.replace("([0-9]{1,12})", "(?P<whole>[0-9]{1,12})", 1)
    .replace("([0-9]{1,6})", "(?P<fraction>[0-9]{1,6})", 1)
    .replace("([kKmM]?)", "(?P<unit>[kKmM]?)", 1)
)


@dataclass(frozen=True)
class ArrowCleaned:
    """Clean rows (``table``, in input order) and the input row of each; the rejected rows and
    the :class:`~shared.cleaning.BadRecord` reason of each."""

    table: pa.Table
    rows: pa.Int64Array
    rejected_rows: pa.Int64Array
    rejected_reasons: pa.StringArray


def clean_arrow(
    record_type: RecordType, raw: pa.Table | pa.RecordBatch, profile: Profile = "standard"
) -> ArrowCleaned:
    """Clean every row of ``raw`` at once (see the module docstring)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown cleaning profile {profile!r}: {', '.join(PROFILES)}")
    columns = _typed_columns(record_type, raw)
    if profile == "standard":
        clean, bad_follower = _STANDARD[record_type](columns)
    else:
        clean, bad_follower = _LEGACY[record_type](columns)
    ind = columns[RAW_KEYS[record_type]]
    missing_ind = pc.is_null(ind)
    reasons = pc.if_else(
        missing_ind,
        pa.scalar("missing_ind"),
        pc.if_else(bad_follower, pa.scalar("bad_value"), pa.scalar(None, _TEXT)),
    )
    good = pc.is_null(reasons)
    positions = _arange(len(ind))
    table = pa.Table.from_arrays(
        [clean[field.name] for field in CLEAN_RECORD_SCHEMAS[record_type]],
        schema=CLEAN_RECORD_SCHEMAS[record_type],
    )
    bad = pc.invert(good)
    return ArrowCleaned(
        table=table.filter(good),
        rows=positions.filter(good),
        rejected_rows=positions.filter(bad),
        rejected_reasons=reasons.filter(bad),
    )


def _typed_columns(record_type: RecordType, raw: pa.Table | pa.RecordBatch) -> dict[str, pa.Array]:
    """Every raw column as a plain array of its raw type (absent columns: all null)."""
    names = set(raw.schema.names)
    columns: dict[str, pa.Array] = {}
    for field in RAW_ARROW_SCHEMAS[record_type]:
        if field.name in names:
            column = raw.column(field.name)
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks()
            columns[field.name] = column.cast(field.type)
        else:
            columns[field.name] = pa.nulls(raw.num_rows, field.type)
    return columns


def _null_if(condition: pa.Array, values: pa.Array) -> pa.Array:
    return pc.if_else(condition, pa.scalar(None, values.type), values)


def _text(column: str, values: pa.Array) -> pa.Array:
    """Trimmed text; placeholders and empty strings become null (``shared.cleaning._text``)."""
    trimmed = pc.utf8_trim(values, characters=WHITESPACE)
    placeholders = pa.array(sorted(PLACEHOLDERS.get(column, ())), _TEXT)
    unwanted = pc.or_(pc.equal(trimmed, ""), pc.is_in(trimmed, value_set=placeholders))
    return _null_if(pc.fill_null(unwanted, False), trimmed)


def _followers(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Counts (``12k`` → 12000) and a mask of text that is no count."""
    text = _text("follower_count", values)
    parts = pc.extract_regex(text, pattern=_FOLLOWERS_NAMED)
    no_count = pc.and_(pc.is_valid(text), pc.is_null(parts))
    whole = pc.cast(pc.struct_field(parts, "whole"), pa.int64())
    fraction = pc.cast(
        pc.utf8_rpad(pc.struct_field(parts, "fraction"), width=6, padding="0"), pa.int64()
    )
    unit = pc.struct_field(parts, "unit")
    scale = pc.fill_null(
        pc.case_when(
            pc.make_struct(
                pc.is_in(unit, value_set=pa.array(["k", "K"])),
                pc.is_in(unit, value_set=pa.array(["m", "M"])),
            ),
            pa.scalar(UNITS["k"], pa.int64()),
            pa.scalar(UNITS["M"], pa.int64()),
        ),
        UNITS[""],
    )
    # integer arithmetic, truncating exactly like the per-record rule
    counts = pc.add(
        pc.multiply(whole, scale),
        pc.divide(pc.multiply(fraction, scale), pa.scalar(1_000_000, pa.int64())),
    )
    return counts, no_count


def _legacy_followers(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The reference's rule: keep the digits (``124k`` → 124); too many digits is no count."""
    text = _null_if(
        pc.fill_null(pc.equal(values, LEGACY_PLACEHOLDERS["follower_count"]), False), values
    )
    digits = pc.replace_substring_regex(text, pattern="[^0-9]", replacement="")
    too_long = pc.fill_null(pc.greater(pc.utf8_length(digits), LEGACY_MAX_DIGITS), False)
    empty = pc.fill_null(pc.equal(digits, ""), True)
    counts = pc.cast(_null_if(pc.or_(empty, too_long), digits), pa.int64())
    return counts, too_long


def _standard_pin(c: dict[str, pa.Array]) -> tuple[dict[str, pa.Array], pa.Array]:
    save = _text("save_location", c["save_location"])
    has_prefix = pc.fill_null(pc.starts_with(save, SAVE_LOCATION_PREFIX), False)
    stripped = pc.utf8_trim(
        pc.utf8_slice_codeunits(save, start=len(SAVE_LOCATION_PREFIX)), characters=WHITESPACE
    )
    stripped = _null_if(pc.fill_null(pc.equal(stripped, ""), False), stripped)
    counts, no_count = _followers(c["follower_count"])
    text = {name: _text(name, c[name]) for name in PIN_TEXT_COLUMNS}
    return {
        "ind": c["index"],
        **text,
        "follower_count": counts,
        "save_location": pc.if_else(has_prefix, stripped, save),
    }, no_count


def _arange(count: int) -> pa.Array:
    """0, 1, …, count-1 as int64, without a Python loop."""
    ones = pa.repeat(pa.scalar(1, pa.int64()), count)
    return pc.subtract(pc.cumulative_sum(ones), pa.scalar(1, pa.int64()))


def _coordinates(c: dict[str, pa.Array]) -> pa.Array:
    """``[latitude, longitude]`` per row: a list array over the two columns interleaved."""
    latitude, longitude = c["latitude"], c["longitude"]
    rows = len(latitude)
    position = _arange(2 * rows)  # value i of the list array comes from input row i // 2 …
    row = pc.divide(position, pa.scalar(2, pa.int64()))
    second = pc.subtract(position, pc.multiply(row, pa.scalar(2, pa.int64())))  # … column i % 2
    take = pc.add(row, pc.multiply(second, pa.scalar(rows, pa.int64())))
    values = pc.take(pa.concat_arrays([latitude, longitude]), take)
    offsets = pc.cast(pc.multiply(_arange(rows + 1), pa.scalar(2, pa.int64())), pa.int32())
    return pa.ListArray.from_arrays(offsets, values)


def _naive_utc(values: pa.Array) -> pa.Array:
    return values.cast(pa.timestamp("us"))


def _standard_geo(c: dict[str, pa.Array]) -> tuple[dict[str, pa.Array], pa.Array]:
    return {
        "ind": c["ind"],
        "country": _text("country", c["country"]),
        "coordinates": _coordinates(c),
        "timestamp": _naive_utc(c["timestamp"]),
    }, pa.repeat(pa.scalar(False), len(c["ind"]))


def _standard_user(c: dict[str, pa.Array]) -> tuple[dict[str, pa.Array], pa.Array]:
    first, last = _text("first_name", c["first_name"]), _text("last_name", c["last_name"])
    # "first last", else whichever there is (no null_handling="skip": it drops all-null input)
    user_name = pc.coalesce(pc.binary_join_element_wise(first, last, " "), first, last)
    return {
        "ind": c["ind"],
        "user_name": user_name,
        "age": c["age"],
        "date_joined": _naive_utc(c["date_joined"]),
    }, pa.repeat(pa.scalar(False), len(c["ind"]))


def _legacy_text(column: str, values: pa.Array) -> pa.Array:
    placeholder = LEGACY_PLACEHOLDERS.get(column)
    if placeholder is None:
        return values
    return _null_if(pc.fill_null(pc.equal(values, placeholder), False), values)


def _legacy_pin(c: dict[str, pa.Array]) -> tuple[dict[str, pa.Array], pa.Array]:
    counts, too_long = _legacy_followers(c["follower_count"])
    text = {name: _legacy_text(name, c[name]) for name in PIN_TEXT_COLUMNS}
    return {
        "ind": c["index"],
        **text,
        "follower_count": counts,
        "save_location": pc.replace_substring(
            c["save_location"], pattern=SAVE_LOCATION_PREFIX, replacement="", max_replacements=1
        ),
    }, too_long


def _legacy_geo(c: dict[str, pa.Array]) -> tuple[dict[str, pa.Array], pa.Array]:
    return {
        "ind": c["ind"],
        "country": c["country"],
        "coordinates": _coordinates(c),
        "timestamp": _naive_utc(c["timestamp"]),
    }, pa.repeat(pa.scalar(False), len(c["ind"]))


def _legacy_user(c: dict[str, pa.Array]) -> tuple[dict[str, pa.Array], pa.Array]:
    return {
        "ind": c["ind"],
        "user_name": pc.binary_join_element_wise(c["first_name"], c["last_name"], " "),
        "age": c["age"],
        "date_joined": _naive_utc(c["date_joined"]),
    }, pa.repeat(pa.scalar(False), len(c["ind"]))


_STANDARD = {"pin": _standard_pin, "geo": _standard_geo, "user": _standard_user}
_LEGACY = {"pin": _legacy_pin, "geo": _legacy_geo, "user": _legacy_user}


@dataclass(frozen=True)
class ArrowDecoded:
    """Raw JSON values decoded into :data:`RAW_ARROW_SCHEMAS` columns (``table``), the input
    position of each decoded row, and the values that did not decode, with a reason."""

    table: pa.Table
    rows: list[int]
    rejected_rows: list[int]
    rejected_reasons: list[str]


def decode_raw(record_type: RecordType, values: list[bytes]) -> ArrowDecoded:
    """Raw records as JSON bytes → typed raw columns, by Arrow's JSON reader (strict: a value of
    the wrong JSON type is rejected rather than coerced). A batch that fails is decoded value
    by value to set the bad ones apart."""
    parsed = parse_json_values(RAW_ARROW_SCHEMAS[record_type], values, unexpected="ignore")
    rows = list(range(len(values))) if parsed.rows is None else parsed.rows
    rejected = [i for i, _ in parsed.failed]
    return ArrowDecoded(
        parsed.table, rows, rejected, [_why_undecodable(values[i]) for i in rejected]
    )


def _why_undecodable(value: bytes) -> str:
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return "not_json"
    return "wrong_type" if isinstance(decoded, dict) else "not_an_object"
