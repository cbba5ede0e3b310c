"""``pinpipe``: one subcommand per service (``ingest-api``, ``cleaner``, ``s3-sink``,
``aggregator``, ``emulator run``), the offline tools (``clean``, ``query``, ``backfill``,
``lake import``, ``emulator seed-db|stats``) and the local stack (``up``, ``status``, ``down``).

Service modules are imported inside each command so that ``pinpipe --help`` stays fast and a
command only loads what it runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from shared.choices import Choice, one_of
from shared.topics import SINK_GROUP_ID

app = typer.Typer(
    help="pinpipe: the Pinterest data pipeline, stream-first on Kafka and Faust.",
    no_args_is_help=True,
    add_completion=False,
)
emulator_app = typer.Typer(
    help="The data source: fill a database, post its rows.", no_args_is_help=True
)
app.add_typer(emulator_app, name="emulator")
lake_app = typer.Typer(
    help="The lake's Delta tables: import files, migrate a Parquet lake, compact, vacuum.",
    no_args_is_help=True,
)
app.add_typer(lake_app, name="lake")


def _as_of(text: str | None) -> int | datetime | None:
    """``--as-of``: a version (digits) or a time (ISO 8601; naive means UTC)."""
    if text is None or text.isdigit():
        return None if text is None else int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(
            f"--as-of takes a version (digits) or an ISO 8601 time, not {text!r}"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _one_of(value: str, allowed: tuple[Choice, ...], option: str) -> Choice:
    """An option's value as one of a Literal's values, or typer's usage error."""
    try:
        return one_of(value, allowed, option)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


@app.command("ingest-api")
def ingest_api() -> None:
    """Run the ingest REST API: the Kafka REST Proxy v2 topics API and the Kinesis-style
    streams API. Port: PINPIPE_INGEST_PORT."""
    from services.ingest_api.main import run

    run()


@app.command()
def cleaner() -> None:
    """Run the cleaner: raw topics → pinpipe.clean.* and pinpipe.dlq, exactly once."""
    from services.cleaner.main import run

    run()


@app.command("clean")
def clean_command(
    record_type: Annotated[str, typer.Option("--type", help="pin, geo or user")],
    profile: Annotated[
        str, typer.Option(help="standard or legacy (the reference's rules)")
    ] = "standard",
    source: Annotated[
        Path | None, typer.Argument(exists=True, dir_okay=False, help="JSON lines (default: stdin)")
    ] = None,
) -> None:
    """Clean raw JSON lines into clean JSON lines on stdout; bad lines are reported on stderr."""
    import sys

    from services.cleaner.bulk import clean_lines
    from shared.profiles import PROFILES
    from shared.topics import RECORD_TYPES

    chosen_type = _one_of(record_type, RECORD_TYPES, "type")
    chosen_profile = _one_of(profile, PROFILES, "profile")
    with source.open(encoding="utf-8") if source else sys.stdin as lines:
        cleaned, rejected = clean_lines(lines, chosen_type, chosen_profile, sys.stdout, sys.stderr)
    typer.echo(f"cleaned {cleaned}, rejected {rejected}", err=True)
    if rejected:
        raise typer.Exit(code=1)


@app.command()
def aggregator() -> None:
    """Run the aggregator (Faust tables) and its /aggregates endpoint."""
    from services.aggregator.main import run

    run()


@app.command("s3-sink")
def s3_sink() -> None:
    """Run the S3 sink: raw and clean topics → Parquet files in the lake, exactly once."""
    from services.s3_sink.main import run

    run()


@emulator_app.command("seed-db")
def emulator_seed_db(
    rows: Annotated[int, typer.Option(min=1, help="Posts to generate")] = 11_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same rows")] = 100,
    from_jsonl: Annotated[
        Path | None,
        typer.Option(
            help="Load pinterest_data.jsonl, geolocation_data.jsonl, user_data.jsonl from DIR"
        ),
    ] = None,
) -> None:
    """Create the three original tables and fill them (generated rows, or the real sample).
    The database: PINPIPE_SOURCE_DB_URL (or PINPIPE_SOURCE_DB_URL_FILE), never an argument."""
    from services.emulator.config import EmulatorSettings
    from services.emulator.main import seed_db

    counts = seed_db(EmulatorSettings(), None, rows, seed, from_jsonl)
    typer.echo(" ".join(f"{table}={count}" for table, count in counts.items()))


@emulator_app.command("stats")
def emulator_stats(
    sample: Annotated[
        Path, typer.Option(exists=True, file_okay=False, help="The real sample's raw_union folder")
    ] = Path("../shared/pinterest-data/raw_union"),
) -> None:
    """Print the statistics the generator matches: the sample's next to the database's
    (PINPIPE_SOURCE_DB_URL, or PINPIPE_SOURCE_DB_URL_FILE)."""
    from services.emulator.config import EmulatorSettings
    from services.emulator.seed import read_jsonl_dir
    from services.emulator.source_db import connect, read_all
    from services.emulator.statistics import compare, render

    engine = connect(EmulatorSettings().source_db_url.get_secret_value())
    typer.echo(render(compare(read_jsonl_dir(sample), read_all(engine))))


@emulator_app.command("run")
def emulator_run(
    count: Annotated[
        int | None, typer.Option(min=1, help="Stop after N posts (default: forever)")
    ] = None,
    rate: Annotated[
        float | None, typer.Option(min=0, help="Posts per second; 0 = unthrottled")
    ] = None,
    random_sleep: Annotated[
        bool, typer.Option(help="Sleep a random 0-1 s between posts, like the original")
    ] = False,
    mode: Annotated[
        str | None, typer.Option(help="batch (POST /topics), stream (PUT /streams) or both")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Posts per request")] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Batches in flight at once (order kept only with 1)")
    ] = 1,
    seed: Annotated[int | None, typer.Option(help="Random seed of the row picks")] = None,
    replay: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Post a recorded {pin,geo,user} JSONL sequence in order",
        ),
    ] = None,
    sent_log: Annotated[
        Path | None,
        typer.Option(
            help="Append every post the API took to this JSONL file "
            "(default: PINPIPE_EMULATOR_SENT_LOG)"
        ),
    ] = None,
    probes: Annotated[
        bool,
        typer.Option(help="Serve /healthz, /readyz and /metrics on PINPIPE_EMULATOR_PORT"),
    ] = True,
) -> None:
    """Post rows to the ingest API: random offsets of the source database (repeats allowed, like
    the original) or a recorded sequence. Prints posted / retried / failed at the end. Secrets
    come from the environment, never arguments: PINPIPE_SOURCE_DB_URL, PINPIPE_EMULATOR_API_KEY
    (or PINPIPE_<NAME>_FILE, a file holding the value)."""
    from services.emulator.config import MODES, EmulatorSettings
    from services.emulator.main import options, run

    settings = EmulatorSettings()
    run_options = options(
        settings,
        mode=_one_of(mode, MODES, "mode") if mode else None,
        rate=rate,
        random_sleep=random_sleep,
        count=count,
        batch_size=batch_size,
        concurrency=concurrency,
        seed_value=seed,
        sent_log=sent_log,
    )
    tally = run(settings, run_options, replay=replay, serve_probes=probes)
    typer.echo(
        f"posted {tally.posted} posts, retried {tally.retried} requests, "
        f"failed {tally.failed} posts"
    )
    if tally.failed:
        raise typer.Exit(code=1)


@app.command("query")
def query(
    name: Annotated[str, typer.Argument(help="A question name, 'all', or 'list'")],
    lake: Annotated[str | None, typer.Option(help="Lake URL (default: PINPIPE_LAKE_URL)")] = None,
    profile: Annotated[
        str,
        typer.Option(
            help="standard (each post once, its latest record) or legacy (the reference's: "
            "every record)"
        ),
    ] = "standard",
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
    out: Annotated[
        Path | None,
        typer.Option(help="Write one file per question (<name>.<format>) into this folder"),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="duckdb (one machine) or spark (pyspark; PINPIPE_SPARK_MASTER)")
    ] = "duckdb",
    as_of: Annotated[
        str | None,
        typer.Option(
            help="Time travel: the lake as of a time (ISO 8601, UTC unless it says) or a "
            "version of the clean tables"
        ),
    ] = None,
) -> None:
    """Answer the analysis questions from the lake's clean tables (DuckDB, or Spark SQL)."""
    from deltalake.exceptions import DeltaError

    from batch.config import BatchSettings
    from batch.query import FORMATS, render, run_questions
    from batch.questions import QUESTIONS
    from batch.spark_install import SparkUnavailable
    from shared.lake_tables import NotMigrated
    from shared.profiles import PROFILES

    if name == "list":
        for question in QUESTIONS.values():
            typer.echo(f"{question.name}\t{question.description}")
        return
    chosen_profile = _one_of(profile, PROFILES, "profile")
    text_format = _one_of(fmt, FORMATS, "format")
    names = list(QUESTIONS) if name == "all" else [name]
    unknown = [n for n in names if n not in QUESTIONS]
    if unknown:
        raise typer.BadParameter(f"unknown question {unknown[0]!r}; try `pinpipe query list`")
    if _one_of(engine, ("duckdb", "spark"), "engine") == "spark":
        from batch.spark import run_questions_spark as run_questions
    try:
        answers = run_questions(
            BatchSettings().open_lake(lake), names, chosen_profile, _as_of(as_of)
        )
    except (NotMigrated, DeltaError) as exc:  # a lake to migrate; no such version or time
        typer.echo(f"pinpipe query: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    except SparkUnavailable as exc:  # its first-use install failed
        typer.echo(f"pinpipe query: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        extension = "txt" if text_format == "table" else text_format
        for question_name, (columns, rows) in answers.items():
            path = out / f"{question_name}.{extension}"
            text = render(columns, rows, text_format)
            path.write_text(text if text.endswith("\n") else text + "\n")  # csv ends with one
            typer.echo(f"{path}: {len(rows)} rows")
        return
    for question_name, (columns, rows) in answers.items():
        if text_format == "table" and len(names) > 1:
            typer.echo(f"\n{question_name}")
        typer.echo(render(columns, rows, text_format))


@app.command()
def backfill(
    lake: Annotated[str | None, typer.Option(help="Lake URL (default: PINPIPE_LAKE_URL)")] = None,
    out: Annotated[
        str | None, typer.Option(help="Lake URL to write the clean zone to (default: --lake)")
    ] = None,
    since: Annotated[str | None, typer.Option(help="First date of raw files, YYYY-MM-DD")] = None,
    until: Annotated[str | None, typer.Option(help="Last date of raw files, YYYY-MM-DD")] = None,
    profile: Annotated[str, typer.Option(help="Cleaning profile: standard or legacy")] = "standard",
) -> None:
    """Re-clean the raw zone into the clean zone with Spark and the vectorised rules
    (idempotent: a re-run writes the same files)."""
    from datetime import date

    from batch.backfill import run_backfill
    from batch.config import BatchSettings
    from batch.spark_install import SparkUnavailable
    from shared.profiles import PROFILES

    cleaning_profile = _one_of(profile, PROFILES, "profile")
    try:
        first = date.fromisoformat(since) if since else None
        last = date.fromisoformat(until) if until else None
    except ValueError as exc:
        raise typer.BadParameter(f"dates are YYYY-MM-DD: {exc}") from exc
    settings = BatchSettings()
    try:
        run_backfill(
            settings,
            lake or settings.lake_url,
            out,
            first,
            last,
            cleaning_profile,
            report=typer.echo,
        )
    except SparkUnavailable as exc:  # its first-use install failed
        typer.echo(f"pinpipe backfill: {exc}", err=True)
        raise typer.Exit(code=1) from exc


@lake_app.command("import")
def lake_import(
    source: Annotated[
        Path, typer.Argument(help="A .csv or .jsonl file", exists=True, dir_okay=False)
    ],
    zone: Annotated[str, typer.Option(help="clean or raw")] = "clean",
    record_type: Annotated[str, typer.Option("--type", help="pin, geo or user")] = "pin",
    lake: Annotated[str | None, typer.Option(help="Lake URL (default: PINPIPE_LAKE_URL)")] = None,
) -> None:
    """Write a file's rows into the lake's layout (reference data, migrations); importing the
    same file again replaces what it wrote."""
    from batch.config import BatchSettings
    from batch.lake_import import import_file
    from shared.lake import ZONES
    from shared.topics import RECORD_TYPES

    chosen_zone = _one_of(zone, ZONES, "zone")
    chosen_type = _one_of(record_type, RECORD_TYPES, "type")
    try:
        imported = import_file(BatchSettings().open_lake(lake), chosen_zone, chosen_type, source)
    except ValueError as exc:
        typer.echo(f"pinpipe lake import: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(f"{imported.rows} rows → {imported.table} (version {imported.version})")


@lake_app.command("migrate")
def lake_migrate(
    lake: Annotated[str | None, typer.Option(help="Lake URL (default: PINPIPE_LAKE_URL)")] = None,
    group: Annotated[
        str, typer.Option(help="The S3 sink's consumer group (PINPIPE_S3_SINK_GROUP_ID)")
    ] = SINK_GROUP_ID,
) -> None:
    """Turn a lake of plain Parquet files (before Delta) into its Delta tables, in place, without
    rewriting a file; the sink's position in each topic-partition recorded in the table. Stop
    the sink first. Re-running changes nothing."""
    from batch.config import BatchSettings
    from batch.migration import migrate

    migrate(BatchSettings().open_lake(lake), group, report=typer.echo)


@lake_app.command("refresh")
def lake_refresh(
    lake: Annotated[str | None, typer.Option(help="Lake URL (default: PINPIPE_LAKE_URL)")] = None,
) -> None:
    """Merge what the clean tables added since the last refresh into the posts table (the
    latest pin, geo and user of every post), in one commit. Queries are exact either way;
    a fresh posts table makes them cheaper."""
    from batch.config import BatchSettings
    from batch.posts_table import refresh

    refresh(BatchSettings().open_lake(lake), report=typer.echo)


@lake_app.command("upkeep")
def lake_upkeep(
    lake: Annotated[str | None, typer.Option(help="Lake URL (default: PINPIPE_LAKE_URL)")] = None,
    min_files: Annotated[
        int, typer.Option(min=2, help="Compact a table once it has this many files")
    ] = 64,
) -> None:
    """What the CronJob lake-upkeep runs every few minutes: refresh the posts table, compact the
    tables with --min-files files or more (128 MiB files), vacuum them (7 days' retention)."""
    from batch.compaction import upkeep
    from batch.config import BatchSettings

    upkeep(BatchSettings().open_lake(lake), min_files, report=typer.echo)


@lake_app.command("compact")
def lake_compact(
    lake: Annotated[str | None, typer.Option(help="Lake URL (default: PINPIPE_LAKE_URL)")] = None,
    target_mib: Annotated[int, typer.Option(min=1, help="Size of the merged files, MiB")] = 128,
) -> None:
    """Merge each table's small files into files of about --target-mib, one commit per table;
    readers and the sink go on meanwhile."""
    from batch.compaction import compact
    from batch.config import BatchSettings

    compact(BatchSettings().open_lake(lake), target_mib * 1024 * 1024, report=typer.echo)


@lake_app.command("vacuum")
def lake_vacuum(
    lake: Annotated[str | None, typer.Option(help="Lake URL (default: PINPIPE_LAKE_URL)")] = None,
    retention_hours: Annotated[
        int, typer.Option(min=0, help="Keep what versions this recent need (default 7 days)")
    ] = 168,
    dry_run: Annotated[bool, typer.Option(help="List, do not delete")] = False,
) -> None:
    """Delete the files compaction (and re-imports) replaced longer ago than the retention;
    time travel reaches back as far as it."""
    from datetime import timedelta

    from batch.compaction import vacuum
    from batch.config import BatchSettings

    vacuum(
        BatchSettings().open_lake(lake),
        timedelta(hours=retention_hours),
        dry_run,
        report=typer.echo,
    )


@app.command()
def up(
    detach: Annotated[
        bool, typer.Option(help="Supervise in the background; return once every service is ready")
    ] = False,
    emulator: Annotated[bool, typer.Option(help="Also run the emulator at a gentle rate")] = True,
    kafka: Annotated[
        bool,
        typer.Option(help="Run the local broker; --no-kafka uses PINPIPE_KAFKA_BOOTSTRAP_SERVERS"),
    ] = True,
    observe: Annotated[
        bool,
        typer.Option(
            help="Also run Prometheus (Debian's prometheus) scraping every service's /metrics"
        ),
    ] = False,
    prometheus_port: Annotated[
        int, typer.Option(help="Prometheus' port on 127.0.0.1, with --observe")
    ] = 9090,
) -> None:
    """Run Kafka and every service locally under a supervisor that restarts whatever exits
    (with backoff); logs under ./var/log. Ctrl-C stops everything."""
    from cli.stack import Options, Stack

    try:
        Stack.here().up(Options(emulator, kafka, observe, prometheus_port), detach=detach)
    except RuntimeError as exc:
        typer.echo(f"pinpipe up: {exc}", err=True)
        raise typer.Exit(code=1) from exc


@app.command()
def status(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Each service of a `pinpipe up` run: pid, state, readiness, restarts, uptime. Exit code
    3 when nothing runs."""
    import json

    from cli.stack import Stack, format_status

    stack = Stack.here()
    current = stack.status()
    if current is None:
        left = stack.leftovers()
        if json_output:
            typer.echo(json.dumps({"up": False, "left_running": left}))
        elif left:
            typer.echo(
                f"pinpipe's supervisor is gone, but {', '.join(left)} still run: pinpipe down"
            )
        else:
            typer.echo("pinpipe is not running (start it with: pinpipe up)")
        raise typer.Exit(code=3)
    typer.echo(
        json.dumps({"up": True, **current}, indent=1) if json_output else format_status(current)
    )


@app.command()
def down() -> None:
    """Stop a `pinpipe up` run (its supervisor stops the emulator first, Kafka last)."""
    from cli.stack import Stack

    if not Stack.here().down():
        typer.echo("pinpipe is not running")


if __name__ == "__main__":
    app()
