"""``pinpipe backfill``: re-clean the lake's raw tables into clean tables with Spark.

Spark reads each raw Delta table (delta-spark; the dates in range only), cleans its records
batch by batch in Python workers with the vectorised rules (:func:`clean_raw`, through
``mapInArrow``: Arrow compute, no Python per row), and writes the clean table with Delta:
the dates in range are replaced in one commit (``replaceWhere``), every date without a range.
The clean rows keep the raw records' ``_topic, _partition, _offset, _ingested_at, date``. A
re-run replaces the same rows with the same rows: idempotent. Records that do not decode or
clean are counted by reason (the stream's DLQ already holds them).

The output lake should hold no stream-written clean table of the same posts (their offsets are
of another topic), and no sink should write it meanwhile: backfill into another lake
(``--out``) or a lake whose clean zone only backfills write.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from batch.config import BatchSettings
from shared.cleaning import BadRecord, clean
from shared.cleaning_arrow import clean_arrow, decode_raw
from shared.lake import table_path
from shared.lake_schema import CLEAN_RECORD_SCHEMAS, CLEAN_SCHEMAS, META_FIELDS, clean_row
from shared.lake_tables import PARTITION_COLUMN, open_table
from shared.profiles import Profile
from shared.topics import RECORD_TYPES, RecordType

if TYPE_CHECKING:
    from pyspark.accumulators import Accumulator, AccumulatorParam

_CARRIED = [*(f.name for f in META_FIELDS), PARTITION_COLUMN]  # from each raw row to its clean row


@dataclass
class TableResult:
    """What the backfill did to one record type's tables."""

    record_type: RecordType
    rows_in: int = 0
    rows_out: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


def clean_raw(
    raw: pa.Table | pa.RecordBatch,
    record_type: RecordType,
    profile: Profile,
    rejected: Counter[str],
    vectorised: bool = True,
) -> pa.Table:
    """Raw rows (``value`` and the carried columns) → their clean rows, carried columns kept;
    the rejected ones counted in ``rejected`` by reason."""
    values = [v or b"" for v in raw.column("value").to_pylist()]
    cleaner = _clean_vectorised if vectorised else _clean_per_row
    records, rows = cleaner(record_type, values, profile, rejected)
    carried = pa.Table.from_batches([raw]) if isinstance(raw, pa.RecordBatch) else raw
    kept = carried.select(_CARRIED).take(pa.array(rows, pa.int64()))
    return pa.Table.from_arrays([*records.columns, *kept.columns], names=[
        *records.schema.names, *_CARRIED])  # fmt: skip


def _clean_vectorised(
    record_type: RecordType, values: list[bytes], profile: Profile, rejected: Counter[str]
) -> tuple[pa.Table, list[int]]:
    decoded = decode_raw(record_type, values)
    rejected.update(decoded.rejected_reasons)
    cleaned = clean_arrow(record_type, decoded.table, profile)
    rejected.update(cleaned.rejected_reasons.to_pylist())
    rows = [decoded.rows[i] for i in cleaned.rows.to_pylist()]
    return cleaned.table, rows


def _clean_per_row(
    record_type: RecordType, values: list[bytes], profile: Profile, rejected: Counter[str]
) -> tuple[pa.Table, list[int]]:
    """The benchmark's baseline: the per-record rules, one Python call per row."""
    import orjson

    records, rows = [], []
    for i, value in enumerate(values):
        try:
            cleaned = clean(record_type, orjson.loads(value), profile)
        except (BadRecord, orjson.JSONDecodeError) as exc:
            rejected[getattr(exc, "reason", "not_json")] += 1
            continue
        records.append(clean_row(record_type, orjson.dumps(cleaned)))
        rows.append(i)
    return pa.Table.from_pylist(records, schema=CLEAN_RECORD_SCHEMAS[record_type]), rows


def run_backfill(
    settings: BatchSettings,
    lake_url: str,
    out_url: str | None,
    since: date | None,
    until: date | None,
    profile: Profile,
    report: Callable[[str], None] = print,
    vectorised: bool = True,
) -> list[TableResult]:
    """Backfill the raw tables' dates in range, on Spark; report progress and a summary."""
    from batch.spark import spark_session, spark_uri, use_s3

    source = settings.open_lake(lake_url)
    out = settings.open_lake(out_url or lake_url)
    types = [t for t in RECORD_TYPES if open_table(source, table_path("raw", t)) is not None]
    if not types:
        report("no raw tables in the lake: nothing to do")
        return []
    window = _date_predicate(since, until)
    report(
        f"backfilling the raw tables of {', '.join(types)} ({profile} profile"
        + (f", {window}" if window else ", every date")
        + f") into {out.url}"
    )
    spark = spark_session("pinpipe-backfill", settings, progress=True)
    if source.is_s3 or out.is_s3:
        use_s3(spark, settings)
    started = time.perf_counter()
    results = []
    for record_type in types:
        result = TableResult(record_type)
        counts: Accumulator[Counter[str]] = spark.sparkContext.accumulator(
            Counter(), _counter_param()
        )
        frame = spark.read.format("delta").load(spark_uri(source, table_path("raw", record_type)))
        if window:
            frame = frame.where(window)
        cleaned = frame.mapInArrow(
            _cleaner(record_type, profile, vectorised, counts), _spark_schema(record_type)
        )
        writer = cleaned.write.format("delta").mode("overwrite").partitionBy(PARTITION_COLUMN)
        if window:
            writer = writer.option("replaceWhere", window)
        writer.save(spark_uri(out, table_path("clean", record_type)))
        tally: Counter[str] = counts.value
        result.rows_in, result.rows_out = tally.pop("_in", 0), tally.pop("_out", 0)
        result.rejected = tally
        results.append(result)
        report(f"  {record_type}: {result.rows_in} raw rows → {result.rows_out} clean rows")
    elapsed = time.perf_counter() - started
    rows_in = sum(r.rows_in for r in results)
    rows_out = sum(r.rows_out for r in results)
    rejected: Counter[str] = Counter()
    for r in results:
        rejected.update(r.rejected)
    report(
        f"done: {len(results)} tables, {rows_in} raw rows → {rows_out} clean rows in "
        f"{elapsed:.1f} s ({rows_in / max(elapsed, 1e-9):,.0f} rows/s)"
        + (f"; rejected: {dict(rejected)}" if rejected else "")
    )
    return results


def _date_predicate(since: date | None, until: date | None) -> str:
    """The SQL predicate of the dates in range ("" for every date)."""
    terms = []
    if since is not None:
        terms.append(f"{PARTITION_COLUMN} >= '{since.isoformat()}'")
    if until is not None:
        terms.append(f"{PARTITION_COLUMN} <= '{until.isoformat()}'")
    return " AND ".join(terms)


def _clean_schema(record_type: RecordType) -> pa.Schema:
    return CLEAN_SCHEMAS[record_type].append(pa.field(PARTITION_COLUMN, pa.string(), False))


def _spark_schema(record_type: RecordType) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(_clean_schema(record_type), prefer_timestamp_ntz=True)


def _cleaner(
    record_type: RecordType,
    profile: Profile,
    vectorised: bool,
    counts: Accumulator[Counter[str]],
) -> Callable[[Iterable[pa.RecordBatch]], Iterable[pa.RecordBatch]]:
    """The function ``mapInArrow`` runs in Spark's Python workers."""
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(_spark_schema(record_type))

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            tally: Counter[str] = Counter()
            cleaned = clean_raw(batch, record_type, profile, tally, vectorised)
            tally.update({"_in": batch.num_rows, "_out": cleaned.num_rows})
            counts.add(tally)
            yield from cleaned.cast(schema).to_batches()

    return run


def _counter_param() -> AccumulatorParam[Counter[str]]:
    """Spark accumulates Counters (rejections by reason, rows in and out) from the workers."""
    from pyspark.accumulators import AccumulatorParam

    class CounterParam(AccumulatorParam[Counter[str]]):
        def zero(self, value: Counter[str]) -> Counter[str]:
            return Counter()

        def addInPlace(self, total: Counter[str], more: Counter[str]) -> Counter[str]:
            total.update(more)
            return total

    return CounterParam()
