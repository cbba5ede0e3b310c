"""The analysis questions on Spark SQL (``pinpipe query --engine spark``): the same SQL files as
DuckDB, over the same Delta tables (read by delta-spark), for lakes too big for one machine.
pyspark is an optional extra (``pip install -e '.[spark]'``), installed on first use with the
jars (batch/spark_install.py); it runs locally unless ``PINPIPE_SPARK_MASTER`` says otherwise
(:class:`batch.config.BatchSettings`).

delta-spark, and for an ``s3://`` lake (read as ``s3a://``, path-style, with the lake's S3
settings) hadoop-aws, come from Maven Central by ``infra/spark/jars.sh`` into
``PINPIPE_SPARK_JARS_DIR``.

The SQL is shared; two spellings differ and are translated here: DuckDB's
``CREATE OR REPLACE VIEW`` is Spark's ``CREATE OR REPLACE TEMPORARY VIEW``.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import pyarrow.dataset as pads

from batch.config import BatchSettings
from batch.posts_table import POSTS, newer_records, watermark
from batch.questions import QUESTIONS, staging_sql, working_set
from batch.spark_install import ensure_jars, ensure_pyspark
from shared.lake import Lake, table_path
from shared.lake_schema import CLEAN_SCHEMAS
from shared.lake_tables import AsOf, open_table
from shared.profiles import Profile
from shared.topics import RECORD_TYPES, RecordType

DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def spark_session(
    app_name: str = "pinpipe", settings: BatchSettings | None = None, progress: bool = False
) -> SparkSession:
    """A Spark session: local on all cores by default, quiet (a progress bar if asked), UTC,
    Python workers on this interpreter."""
    settings = settings or BatchSettings()
    # Python workers run this interpreter (its packages), not whatever `python3` is on PATH;
    # pyspark reads the variable when the context starts.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    ensure_pyspark()  # on first use: `make up` leaves Spark out
    ensure_jars(settings.spark_jars_dir)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    jars = sorted(settings.spark_jars_dir.glob("*.jar"))
    if jars:
        builder = builder.config("spark.jars", ",".join(str(j.resolve()) for j in jars))
    session = (
        builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", str(progress).lower())
        .config("spark.pyspark.python", sys.executable)
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def _statements(sql: str) -> list[str]:
    """A SQL file's statements, comment lines dropped, in Spark's spelling."""
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    code = code.replace("CREATE OR REPLACE VIEW", "CREATE OR REPLACE TEMPORARY VIEW")
    return [statement.strip() for statement in code.split(";") if statement.strip()]


def use_s3(spark: SparkSession, settings: BatchSettings) -> None:
    """Points s3a:// at the configured S3 endpoint (path-style), for this session's reads."""
    if not any(settings.spark_jars_dir.glob("hadoop-aws-*.jar")):
        raise RuntimeError(
            f"an s3:// lake needs hadoop-aws in {settings.spark_jars_dir}: run infra/spark/jars.sh"
            " (make setup-spark does)"
        )
    options = {
        "fs.s3a.path.style.access": "true",
        "fs.s3a.endpoint.region": settings.s3_region,
        # one filesystem per endpoint and key, not one cached per bucket name
        "fs.s3a.impl.disable.cache": "true",
    }
    if settings.s3_endpoint_url:
        options["fs.s3a.endpoint"] = settings.s3_endpoint_url
        options["fs.s3a.connection.ssl.enabled"] = str(
            settings.s3_endpoint_url.startswith("https://")
        ).lower()
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        options["fs.s3a.access.key"] = settings.s3_access_key_id.get_secret_value()
        options["fs.s3a.secret.key"] = settings.s3_secret_access_key.get_secret_value()
    for key, value in options.items():
        spark.conf.set(key, value)


def _read_delta(spark: SparkSession, lake: Lake, relative: str, as_of: AsOf | None) -> Any:
    reader = spark.read.format("delta")
    if isinstance(as_of, int):
        reader = reader.option("versionAsOf", as_of)
    elif as_of is not None:
        reader = reader.option("timestampAsOf", as_of.isoformat())
    return reader.load(spark_uri(lake, relative))


def _empty(spark: SparkSession, record_type: RecordType) -> Any:
    """An empty frame of the clean schema: an empty lake answers with empty results."""
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = from_arrow_schema(CLEAN_SCHEMAS[record_type], prefer_timestamp_ntz=True)
    return spark.createDataFrame([], schema)


def _register_clean_views(spark: SparkSession, lake: Lake, as_of: AsOf | None = None) -> None:
    for record_type in RECORD_TYPES:
        relative = table_path("clean", record_type)
        if open_table(lake, relative) is not None:
            frame = _read_delta(spark, lake, relative, as_of)
        else:
            frame = _empty(spark, record_type)
        frame.createOrReplaceTempView(f"clean_{record_type}")


def _register_posts_views(spark: SparkSession, lake: Lake, as_of: AsOf | None = None) -> bool:
    """``posts`` and ``new_pin|geo|user`` (the clean records added since its refresh) as
    batch/query.py has them; False without a posts table."""
    posts = open_table(lake, POSTS, as_of)
    if posts is None:
        return False
    _read_delta(spark, lake, POSTS, as_of).createOrReplaceTempView("posts")
    newer, _ = newer_records(lake, watermark(posts), as_of)
    for record_type in RECORD_TYPES:
        data = newer.get(record_type)
        paths = []
        if isinstance(data, pads.FileSystemDataset):
            table_uri = spark_uri(lake, table_path("clean", record_type))
            paths = [f"{table_uri}/{f.path.lstrip('/')}" for f in data.get_fragments()]
        frame = spark.read.parquet(*paths) if paths else _empty(spark, record_type)
        frame.createOrReplaceTempView(f"new_{record_type}")
    return True


def spark_uri(lake: Lake, relative: str) -> str:
    """Where Spark finds a table: ``s3a://`` for an ``s3://`` lake."""
    return lake.table_uri(relative).replace("s3://", "s3a://", 1)


def _cache_working_set(spark: SparkSession, over_posts: bool) -> None:
    """Spark's form of batch.query.materialise_working_set: each relation the questions read,
    computed once and cached, under its own name."""
    for name, columns in working_set(over_posts):
        frame = spark.table(name).select(*(columns or ["*"])).cache()
        frame.count()
        frame.createOrReplaceTempView(name)


def run_questions_spark(
    lake: Lake,
    names: list[str],
    profile: Profile = "standard",
    as_of: AsOf | None = None,
    settings: BatchSettings | None = None,
) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Column names and rows of each question's answer, computed by Spark SQL (``settings``:
    where Spark runs and, for an ``s3://`` lake, its S3 access)."""
    unknown = [name for name in names if name not in QUESTIONS]
    if unknown:
        raise KeyError(f"unknown question {unknown[0]!r}; known: {', '.join(QUESTIONS)}")
    settings = settings or BatchSettings()
    spark = spark_session(settings=settings)
    if lake.is_s3:
        use_s3(spark, settings)
    _register_clean_views(spark, lake, as_of)
    # a version number is each table's own: with one, the clean tables alone are exact
    over_posts = (
        profile == "standard"
        and not isinstance(as_of, int)
        and _register_posts_views(spark, lake, as_of)
    )
    for statement in _statements(staging_sql(profile, over_posts)):
        spark.sql(statement)
    if len(names) > 1:
        _cache_working_set(spark, over_posts)
    answers = {}
    for name in names:
        (query,) = _statements(QUESTIONS[name].sql())
        frame = spark.sql(query)
        answers[name] = (frame.columns, [tuple(row) for row in frame.collect()])
    return answers
