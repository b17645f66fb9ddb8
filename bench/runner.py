"""One benchmark run, from the data set to the report."""

import importlib.metadata
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import close_old_connections

from bench import bulk, database, dataset, load, sqlfloor
from bench.dataset import DataSetSpec
from bench.operations import Operation, read_operations, write_operations
from bench.report import Report, RequestResult, WorkerResult, load_average, machine_description, now
from bench.server import Gunicorn, production_environment
from contacts.models import Contact
from contacts_project.embedded_db import data_dir

# Writes run for the whole duration; their targets must outlast it without repeating a body.
MAX_WRITE_RATE = 1500
SQL_CAPTURED_READS = 20
SQL_CAPTURED_WRITES = 200
SQL_SECONDS = 5
BULK_OPERATIONS = ("export", "import", "reimport")
CONN_MAX_AGE = 600


@dataclass
class BenchOptions:
    database: str = "contacts_bench"
    spec: DataSetSpec = field(default_factory=DataSetSpec)
    only: set[str] | None = None  # operation keys or prefixes; None: everything
    duration: float = 10
    warmup: float = 2
    max_requests: int = 0  # per load run and thread; 0: run for the duration
    generator: str = "auto"  # bench.load.GENERATORS
    workers: int = 2
    connections: int = 2
    build_only: bool = False
    command: str = "python manage.py bench"
    log: Callable[[str], None] = print


def _selected(key: str, only: set[str] | None) -> bool:
    return only is None or key == "livez" or any(key == name or key.startswith(name) for name in only)


def run(options: BenchOptions) -> Report | None:
    started = time.monotonic()
    log = options.log
    database.use_database(options.database)
    log(f"database {database.current_name()}: building the data set (kept between runs)")
    data = dataset.build(options.spec, log=log)
    log("VACUUM (ANALYZE) and CHECKPOINT")
    dataset.settle()
    if options.build_only:
        return None
    if options.generator == "auto" and load.wrk_path() is None:
        log(load.INSTALL_HINT)

    spec = options.spec
    writes = dataset.scratch_account(
        dataset.WRITES, contacts=min(dataset.WRITES_CONTACTS, max(spec.contacts, 1)), seed=spec.seed + 100
    )
    operations = [
        operation
        for operation in [*read_operations(data.big), *write_operations(writes)]
        if _selected(operation.key, options.only)
    ]
    # A key per operation: the production rate limit (per key and minute) stays on, and
    # one operation's requests never count against the next one's.
    owners = {"big": data.big, "writes": writes}
    keys = {
        operation.key: dataset.api_key(owners[operation.account], name=f"bench {operation.key}")
        if operation.account in owners
        else "none"
        for operation in operations
    }
    env = production_environment(database_url=database.database_url(), conn_max_age=CONN_MAX_AGE)
    big_rows = Contact.objects.for_account(data.big).count()
    totals = data.totals()
    report = Report(
        date=now(),
        command=options.command,
        machine=machine_description(),
        database=f"{database.server_version()}, database `{database.current_name()}` on the same machine",
        server=(
            f"gunicorn {importlib.metadata.version('gunicorn')}, {options.workers} sync workers, DJANGO_DEBUG=0, "
            f"persistent connections (DB_CONN_MAX_AGE={CONN_MAX_AGE}, health-checked); Django "
            f"{importlib.metadata.version('django')}, DRF {importlib.metadata.version('djangorestframework')}"
        ),
        load=_load_description(options),
        data_set=(
            f"{big_rows:,} contacts in the measured account + {spec.neighbours} other account(s) of "
            f"{spec.neighbour_contacts:,}, {spec.lists} lists and {spec.segments} segments each; shared tables: "
            + ", ".join(f"{value:,} {name}" for name, value in totals.items())
        ),
    )
    scratch = Path(data_dir())
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-", dir=scratch) as workdir:
        work = Path(workdir)
        with Gunicorn(workers=options.workers, env=env, log_path=work / "gunicorn.log") as server:
            log(f"gunicorn on {server.base_url} ({options.workers} workers)")
            load_at_start = load_average()
            for operation in operations:
                report.requests.append(_measure(operation, server=server, keys=keys, options=options, work=work))
                _log_request(report.requests[-1], log)
            report.load_averages = (load_at_start, load_average())
            for number, memory in enumerate(server.worker_memory(), start=1):
                report.workers.append(
                    WorkerResult(
                        f"worker_{number}", f"gunicorn worker {number}", "worker", memory.rss_bytes, memory.peak_bytes
                    )
                )
        report.bulk = _bulk(data, options=options, env=env, work=work)
    log("removing the run's scratch accounts")
    dataset.remove(dataset.WRITES, dataset.IMPORT)
    report.elapsed_seconds = time.monotonic() - started
    return report


def _load_description(options: BenchOptions) -> str:
    per_run = (
        f"up to {options.max_requests} requests per operation"
        if options.max_requests
        else f"{options.duration:g} s per operation after {options.warmup:g} s of warm-up"
    )
    return (
        f"{load.describe(options.generator)}, 1 thread, {options.connections} connections, {per_run}; "
        f"SQL floors: psycopg {importlib.metadata.version('psycopg')}"
    )


def _write_lines(operation: Operation, seconds: float, options: BenchOptions) -> list:
    if options.max_requests:
        count = options.max_requests + options.connections + 10
    else:
        count = int(MAX_WRITE_RATE * max(seconds, 1))
    return operation.lines(count)


def _measure(operation: Operation, *, server, keys, options: BenchOptions, work: Path) -> RequestResult:
    result = RequestResult(operation.key, operation.label, operation.floor)
    targets = work / f"{operation.key}.targets"
    try:
        if options.warmup:
            load.write_targets(targets, _write_lines(operation, options.warmup, options))
            load.run_load(
                base_url=server.base_url,
                targets=targets,
                api_key=keys[operation.key],
                connections=options.connections,
                duration=options.warmup,
                max_requests=options.max_requests,
                generator=options.generator,
            )
        load.write_targets(targets, _write_lines(operation, options.duration, options))
        result.http = load.run_load(
            base_url=server.base_url,
            targets=targets,
            api_key=keys[operation.key],
            connections=options.connections,
            duration=options.duration,
            max_requests=options.max_requests,
            generator=options.generator,
        )
        if operation.account != "none":
            result.sql = _sql_floor(operation, key=keys[operation.key], options=options)
    except Exception as error:  # one broken operation must not lose a 20-minute run
        result.error = f"{type(error).__name__}: {error}"
    finally:
        close_old_connections()
    return result


def _sql_floor(operation: Operation, *, key: str, options: BenchOptions) -> sqlfloor.SqlResult:
    count = SQL_CAPTURED_WRITES if operation.writes else SQL_CAPTURED_READS
    if options.max_requests:
        count = min(count, options.max_requests)
    captured = sqlfloor.capture(operation.sample(count), api_key=key, writes=operation.writes)
    return sqlfloor.replay(
        captured,
        dsn=database.dsn(),
        connections=options.connections,
        duration=min(options.duration, SQL_SECONDS),
        cycle=not operation.writes,
        max_requests=options.max_requests,
    )


def _log_request(row: RequestResult, log) -> None:
    if row.error:
        log(f"  {row.label}: FAILED {row.error}")
        return
    http, sql = row.http, row.sql
    line = f"  {row.label}: p50 {http.p50_ms:.1f} ms, p99 {http.p99_ms:.1f} ms, {http.rate:,.0f} req/s"
    if http.errors:
        line += f", {http.errors} errors"
    if sql is not None:
        line += f"; SQL p50 {sql.p50_ms:.2f} ms, {sql.rate:,.0f} req/s ({sql.statements_per_request:.1f} statements)"
    log(line)


def _bulk(data, *, options: BenchOptions, env: dict, work: Path) -> list[bulk.BulkResult]:
    wanted = [key for key in BULK_OPERATIONS if _selected(key, options.only)]
    if not wanted:
        return []
    log = options.log
    results = []
    rows = Contact.objects.for_account(data.big).count()
    exported = work / "export.csv"
    log(f"export of {rows:,} contacts")
    export = bulk.export(account_name=data.big.name, rows=rows, output=exported, env=env, log_dir=work)
    if not export.error:
        try:
            copy = bulk.psql_copy(account=data.big, output=work / "psql-copy.csv", env=_psql_env(env), log_dir=work)
            export.reference_seconds = copy.seconds
            if copy.returncode != 0:
                export.note = f"psql failed: {copy.stderr.strip()[:200]}"
        except RuntimeError as error:
            export.note = str(error)
    log(f"  export: {export.seconds:.1f}s, psql \\copy {export.reference_seconds or 0:.1f}s, {export.error or ''}")
    if "export" in wanted:
        results.append(export)
    if export.error or not ({"import", "reimport"} & set(wanted)):
        return results
    source = work / "import.csv"
    count = bulk.without_ids(exported, source)
    dataset.scratch_account(dataset.IMPORT)
    for key, label in (("import", "import (new contacts)"), ("reimport", "re-import of the same file")):
        log(f"{label}: {count:,} rows into {dataset.IMPORT}")
        result = bulk.import_file(
            key=key,
            label=f"{label}, {count:,} rows (CSV, validated)",
            account_name=dataset.IMPORT,
            path=source,
            rows=count,
            env=env,
            log_dir=work,
        )
        log(f"  {key}: {result.seconds:.1f}s ({result.rate or 0:,.0f} rows/s) {result.note} {result.error or ''}")
        if key in wanted:
            results.append(result)
    return results


def _psql_env(env: dict) -> dict:
    return {**env, **database.psql_environment()}
