"""The load test (issue #7): a mixed workload against gunicorn on the bench's data set, alone or beside an import.

``python manage.py loadtest [--duration 300] [--connections 4] [--with-import]``
(``docs/RELIABILITY.md``, "Load"). It reuses the benchmark suite: the data set
of ``bench.dataset`` (built by ``manage.py bench --build-only``, never here),
the production server of ``bench.server``, the request targets of
``bench.operations`` and the subprocess import/export of ``bench.bulk``.

One wrk run (``loadtest.lua``, one connection per thread) picks every request
at random by the weights of ``MIX`` from one targets file; each answer's kind,
status, start and latency come back in per-thread sample files, from which
the report is computed: status classes, socket errors (wrk's count), p50/p99/
max and requests/s for the whole run, for the window in which the import ran,
and per kind. The guarantees: no 5xx, no socket error, p99 < 200 ms.

Latencies are the script's own, per answer, not wrk's histogram (kept in the
JSON as ``wrk``): against a server that closes every connection, as gunicorn's
sync workers do, wrk 4.1 records latencies no request had (endpoints sleeping
exactly 5 or 50 ms, one connection: wrk's p75 was 36 ms, every sample of the
script was ~5.5 or ~50.5 ms).

Writes go to a scratch account (``loadtest-writes``), the import to another
(``loadtest-import``); both are purged when the run ends, so the read data set
the benchmark measures never changes. The rate limit is disabled in the
server's environment (``RATE_LIMIT_PER_MINUTE=0``): the load test measures the
service, not the limiter.
"""

import csv
import importlib.metadata
import itertools
import json
import os
import re
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.db import close_old_connections, connection

from accounts.models import Account, ApiKey
from bench import bulk, database, dataset, load
from bench.operations import SEGMENTS, read_operations, write_operations
from bench.report import machine_description, now
from bench.server import Gunicorn, production_environment
from bench.stats import percentile
from contacts.exporters import EXPORT_COLUMNS
from contacts.models import Contact
from contacts_project.embedded_db import data_dir
from segments.models import Segment

LUA_SCRIPT = Path(__file__).with_name("loadtest.lua")
WRITES = "loadtest-writes"
IMPORT = "loadtest-import"
KEY_NAME = "loadtest"
P99_LIMIT_MS = 200.0
CONN_MAX_AGE = 600
WRK_TIMEOUT = "30s"  # beyond the 15 s statement timeout: a slow query shows as its 503, not as a timeout
# Creates must never repeat a phone or email (a repeat is a 409): enough distinct bodies for this rate.
MAX_RATE = 1500
UPDATE_LINES = 20_000  # updates may repeat: PATCHing the same metadata again is still a 200
SEED = 7

# (kind, percent of requests, label): reads of the big account, writes of the scratch account.
MIX: tuple[tuple[str, float, str], ...] = (
    ("get", 40, "get by id"),
    ("list_first", 5, "list, first page"),
    ("list_deep", 10, "list, page 5,000 (cursor)"),
    ("list_filtered", 5, "list, stage + country + tag"),
    ("search_prefix", 3, "search: name prefix"),
    ("search_name", 3, "search: full name"),
    ("search_domain", 3, "search: email domain"),
    ("search_last4", 3, "search: phone last 4 digits"),
    ("search_national", 3, "search: phone national prefix"),
    ("create", 10, "create"),
    ("update", 10, "update with metadata merge (PATCH)"),
    ("preview_1", 5 / 3, f"segment preview: {SEGMENTS[0][1]}"),
    ("preview_2", 5 / 3, f"segment preview: {SEGMENTS[1][1]}"),
    ("preview_3", 5 / 3, f"segment preview: {SEGMENTS[2][1]}"),
)
WRITE_KINDS = ("create", "update")
LABELS = dict((kind, label) for kind, _, label in MIX)


class DataSetMissing(Exception):
    pass


@dataclass
class LoadTestOptions:
    database: str = "contacts_bench"
    duration: float = 300
    warmup: float = 5
    connections: int = 4
    workers: int = 2
    with_import: bool = False
    import_rows: int = 100_000
    import_delay: float = 5
    command: str = "python manage.py loadtest"
    log: Callable[[str], None] = print


@dataclass
class Window:
    """The answers of a span of the run: status classes, latency, rate."""

    label: str
    seconds: float
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)  # "2xx", "3xx", "4xx", "5xx"
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def count(self, status_class: str) -> int:
        return self.statuses.get(status_class, 0)


@dataclass
class ImportResult:
    rows: int
    source: str
    seconds: float | None = None
    started_s: float | None = None  # into the measured load
    ended_s: float | None = None
    note: str = ""
    error: str | None = None

    @property
    def rate(self) -> float | None:
        return self.rows / self.seconds if self.seconds else None


@dataclass
class LoadTestReport:
    date: str
    command: str
    machine: str
    server: str
    load: str
    data_set: str
    duration_s: float = 0.0
    whole: Window | None = None
    during_import: Window | None = None
    kinds: list[Window] = field(default_factory=list)
    socket_errors: dict[str, int] = field(default_factory=dict)  # connect, read, write, timeout
    wrk: dict = field(default_factory=dict)  # wrk's own totals and latency, a cross-check
    create_wraps: int = 0
    error_answers: list[dict] = field(default_factory=list)
    warmup: Window | None = None
    import_result: ImportResult | None = None
    load_average: tuple[float, float] | None = None  # 1-minute load average as the load starts and ends
    server_log: list[str] = field(default_factory=list)  # tracebacks, worker timeouts and restarts
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_json(self) -> dict:
        data = asdict(self)
        data["passed"] = self.passed
        for name in ("whole", "during_import", "warmup"):
            if getattr(self, name) is not None:
                data[name]["rate"] = getattr(self, name).rate
        for item, window in zip(data["kinds"], self.kinds, strict=True):
            item["rate"], item["name"] = window.rate, LABELS[window.label]
        if self.import_result is not None:
            data["import_result"]["rate"] = self.import_result.rate
        return data


# --- the data set -------------------------------------------------------------


def use_data_set(name: str) -> Account:
    """Switch to the bench's database and return its big account; ``DataSetMissing`` when not built."""
    hint = "Build it first (several minutes, kept for later runs): python manage.py bench --build-only"
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        exists = cursor.fetchone() is not None
    if not exists:
        raise DataSetMissing(f"The bench data set is missing: there is no database {name!r}. {hint}")
    database.use_database(name)
    big = Account.objects.filter(name=dataset.BIG).first()
    if big is None or not Contact.objects.for_account(big).exists() or not Segment.objects.for_account(big).exists():
        raise DataSetMissing(f"The bench data set is missing: database {name!r} has no account {dataset.BIG!r}. {hint}")
    return big


def _preview_rules(big: Account) -> list[dict]:
    """The rules of the bench's three segment shapes (by their seeded names), else of the first three segments."""
    by_name = {segment.name: segment for segment in Segment.objects.for_account(big).order_by("name")}
    chosen = [by_name.pop(name) for name, _ in SEGMENTS if name in by_name]
    chosen += list(by_name.values())[: len(SEGMENTS) - len(chosen)]
    return [segment.rules for segment in chosen]


# --- the targets --------------------------------------------------------------


@dataclass
class Targets:
    """Every kind's lines but the creates, which are drawn fresh for each targets file."""

    fixed: dict[str, list[tuple[str, str, str | None]]]  # every kind but create
    creates: Callable[[int], list]

    def write(self, path: Path, *, creates: int) -> Path:
        with path.open("w", encoding="utf-8") as file:
            for kind, lines in [*self.fixed.items(), ("create", self.creates(creates))]:
                for method, target, body in lines:
                    if "\t" in target or "\n" in target or (body and ("\t" in body or "\n" in body)):
                        raise ValueError(f"A target may not contain a tab or a newline: {target!r}")
                    file.write(f"{kind}\t{method}\t{target}\t{body}\n" if body else f"{kind}\t{method}\t{target}\n")
        return path


def prepare_targets(big: Account, writes: Account, *, threads: int) -> Targets:
    operations = {operation.key: operation for operation in read_operations(big)}
    lines = {kind: operations[kind].targets for kind, _, _ in MIX if kind in operations}
    writing = {operation.key: operation for operation in write_operations(writes)}
    lines["update"] = writing["update"].lines(UPDATE_LINES)
    # Line i of a preview kind goes to thread i % threads: repeat each shape once per thread.
    for number, rules in enumerate(_preview_rules(big), start=1):
        body = json.dumps({"rules": rules}, ensure_ascii=False)
        lines[f"preview_{number}"] = [("POST", "/v1/contacts/segments/preview", body)] * threads
    missing = [kind for kind, _, _ in MIX if kind != "create" and not lines.get(kind)]
    if missing:
        raise DataSetMissing(f"The data set gives no requests for: {', '.join(missing)}")
    return Targets(fixed=lines, creates=writing["create"].lines)


def creates_needed(seconds: float, connections: int) -> int:
    share = dict((kind, weight) for kind, weight, _ in MIX)["create"] / 100
    return int(MAX_RATE * max(seconds, 1) * share) + 50 * connections


# --- the import -----------------------------------------------------------------


def import_file(big: Account, *, rows: int, env: dict, work: Path, log) -> tuple[Path, int, str]:
    """A CSV of ``rows`` contacts to import: an export of a neighbour account (or the big one), ids dropped."""
    source = Account.objects.filter(name=dataset.NEIGHBOUR.format(number=1)).first()
    if source is None or Contact.objects.for_account(source).count() < rows:
        source = big
    available = Contact.objects.for_account(source).count()
    exported = work / "import-source.csv"
    log(f"exporting {source.name} ({available:,} contacts) for the import")
    result = bulk.export(account_name=source.name, rows=available, output=exported, env=env, log_dir=work)
    if result.error:
        raise RuntimeError(f"export of {source.name} failed: {result.error}")
    target = work / "import.csv"
    written = 0
    with exported.open(newline="", encoding="utf-8") as inp, target.open("w", newline="", encoding="utf-8") as out:
        reader, writer = csv.reader(inp), csv.writer(out)
        header = next(reader)
        if header != list(EXPORT_COLUMNS):
            raise RuntimeError(f"Unexpected export header: {header}")
        writer.writerow(header[1:])  # without ids: every row is a create in the new account
        for row in itertools.islice(reader, rows):
            writer.writerow(row[1:])
            written += 1
    exported.unlink()
    return target, written, source.name


class ImportThread(threading.Thread):
    """``manage.py import_contacts`` as a subprocess (``bench.bulk``), started ``delay`` seconds in."""

    def __init__(self, *, path: Path, rows: int, source: str, delay: float, env: dict, work: Path):
        super().__init__(daemon=True)
        self.path, self.delay, self.env, self.work = path, delay, env, work
        self.result = ImportResult(rows=rows, source=source)
        self.started_at: float | None = None  # time.monotonic()
        self.ended_at: float | None = None
        self.cancelled = threading.Event()

    def run(self) -> None:
        if self.cancelled.wait(self.delay):
            self.result.error = "not started: the load ended first"
            return
        self.started_at = time.monotonic()
        try:
            outcome = bulk.import_file(
                key="import",
                label="import",
                account_name=IMPORT,
                path=self.path,
                rows=self.result.rows,
                env=self.env,
                log_dir=self.work,
            )
        except Exception as error:
            self.result.error = f"{type(error).__name__}: {error}"
        else:
            self.result.seconds, self.result.note, self.result.error = outcome.seconds, outcome.note, outcome.error
        self.ended_at = time.monotonic()


# --- wrk ------------------------------------------------------------------------


@dataclass
class WrkRun:
    summary: dict
    samples: list[tuple[str, int, int, int]]  # kind, status, start µs (CLOCK_MONOTONIC), latency µs
    wraps: Counter
    error_answers: list[dict]
    started: float  # time.monotonic() when wrk was launched
    ended: float


def run_wrk(*, base_url: str, targets: Path, keys: dict[str, str], connections: int, duration: float, work: Path):
    wrk = load.wrk_path()
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    prefix = work / f"{targets.stem}.samples"
    for old in work.glob(f"{prefix.name}.*"):
        old.unlink()
    weights = ",".join(f"{kind}={weight:.4f}" for kind, weight, _ in MIX)
    command = [
        wrk,
        f"-t{connections}",
        f"-c{connections}",  # one connection per thread: the script pairs each request with its answer
        f"-d{max(1, round(duration))}s",
        "--timeout",
        WRK_TIMEOUT,
        "-s",
        str(LUA_SCRIPT),
        base_url,
        "--",
        str(targets),
        weights,
        ",".join(f"{kind}={key}" for kind, key in keys.items()),
        str(connections),
        str(SEED),
        str(prefix),
    ]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, errors="replace", check=False)
    ended = time.monotonic()
    line = next((line for line in result.stdout.splitlines() if line.startswith("LOADTEST_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    samples, wraps, errors = [], Counter(), []
    for path in sorted(work.glob(f"{prefix.name}.*")):
        with path.open(encoding="utf-8", errors="replace") as file:
            for text in file:
                kind, _, rest = text.rstrip("\n").partition("\t")
                if kind == "!wrap":
                    wraps[rest] += 1
                elif kind == "!error":
                    errors.append(json.loads(rest))
                else:
                    status, start, latency = rest.split("\t")
                    samples.append((kind, int(status), int(start), int(latency)))
        path.unlink()
    summary = json.loads(line.removeprefix("LOADTEST_JSON "))
    return WrkRun(summary, samples, wraps, errors, started, ended)


def window(label: str, samples: list, seconds: float) -> Window:
    latencies = sorted(sample[3] / 1000 for sample in samples)
    statuses = Counter(f"{sample[1] // 100}xx" for sample in samples)
    return Window(
        label=label,
        seconds=seconds,
        requests=len(samples),
        statuses=dict(sorted(statuses.items())),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        max_ms=latencies[-1] if latencies else 0.0,
    )


# --- the run --------------------------------------------------------------------


def run(options: LoadTestOptions) -> LoadTestReport:
    log = options.log
    if load.wrk_path() is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    big = use_data_set(options.database)
    big_rows = Contact.objects.for_account(big).count()
    accounts = Account.objects.count()
    log(f"database {database.current_name()}: {dataset.BIG} has {big_rows:,} contacts ({accounts} accounts)")
    dataset.remove(WRITES, IMPORT)  # leftovers of an interrupted run
    writes = dataset.scratch_account(WRITES, contacts=min(dataset.WRITES_CONTACTS, big_rows), seed=6007)
    keys = {
        "big": dataset.api_key(big, name=KEY_NAME),
        "writes": dataset.api_key(writes, name=KEY_NAME),
    }
    kind_keys = {kind: keys["writes" if kind in WRITE_KINDS else "big"] for kind, _, _ in MIX}
    env = production_environment(database_url=database.database_url(), conn_max_age=CONN_MAX_AGE)
    env["RATE_LIMIT_PER_MINUTE"] = "0"  # measure the service, not the limiter
    report = LoadTestReport(
        date=now().strftime("%Y-%m-%d %H:%M UTC"),
        command=options.command,
        machine=machine_description(),
        server=(
            f"gunicorn {importlib.metadata.version('gunicorn')}, {options.workers} sync workers, DJANGO_DEBUG=0, "
            f"DB_CONN_MAX_AGE={CONN_MAX_AGE}, RATE_LIMIT_PER_MINUTE=0; {database.server_version()}"
        ),
        load=(
            f"{load.describe('wrk')}, {options.connections} connections (one per thread), "
            f"{options.duration:g} s after {options.warmup:g} s of warm-up"
        ),
        data_set=f"{big_rows:,} contacts in {dataset.BIG}; {accounts} accounts in database {database.current_name()}",
    )
    scratch = Path(data_dir())
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="loadtest-", dir=scratch) as workdir:
            work = Path(workdir)
            _run_in(work, options=options, big=big, writes=writes, kind_keys=kind_keys, env=env, report=report)
    finally:
        close_old_connections()
        log(f"removing the scratch accounts {WRITES}, {IMPORT} and the {KEY_NAME!r} key of {dataset.BIG}")
        dataset.remove(WRITES, IMPORT)
        ApiKey.objects.filter(account=big, name=KEY_NAME).delete()
    _judge(report)
    return report


def _run_in(work: Path, *, options, big, writes, kind_keys, env, report: LoadTestReport) -> None:
    log = options.log
    log("preparing the targets (reads from the data set, fresh creates, updates, segment previews)")
    targets = prepare_targets(big, writes, threads=options.connections)
    importer = None
    if options.with_import:
        path, rows, source = import_file(big, rows=options.import_rows, env=env, work=work, log=log)
        dataset.scratch_account(IMPORT)
        importer = ImportThread(path=path, rows=rows, source=source, delay=options.import_delay, env=env, work=work)
    run_targets = targets.write(work / "run.targets", creates=creates_needed(options.duration, options.connections))
    with Gunicorn(workers=options.workers, env=env, log_path=work / "gunicorn.log") as server:
        log(f"gunicorn on {server.base_url} ({options.workers} workers, RATE_LIMIT_PER_MINUTE=0)")
        if options.warmup > 0:
            warm_targets = targets.write(
                work / "warmup.targets", creates=creates_needed(options.warmup, options.connections)
            )
            log(f"warm-up: {options.warmup:g} s")
            warm = run_wrk(
                base_url=server.base_url,
                targets=warm_targets,
                keys=kind_keys,
                connections=options.connections,
                duration=options.warmup,
                work=work,
            )
            report.warmup = window("warm-up", warm.samples, warm.summary["duration_us"] / 1e6)
        if importer is not None:
            log(f"import of {importer.result.rows:,} rows into {IMPORT} starts {options.import_delay:g} s in")
            importer.start()
        log(f"load: {options.duration:g} s, {options.connections} connections")
        load_at_start = os.getloadavg()[0]
        try:
            measured = run_wrk(
                base_url=server.base_url,
                targets=run_targets,
                keys=kind_keys,
                connections=options.connections,
                duration=options.duration,
                work=work,
            )
        finally:
            if importer is not None:
                importer.cancelled.set()
                if importer.is_alive():
                    log("waiting for the import to finish")
                importer.join()
        report.load_average = (load_at_start, os.getloadavg()[0])
        report.server_log = _server_log(work / "gunicorn.log", workers=options.workers)
    _fill(report, measured, importer)


def _fill(report: LoadTestReport, measured: WrkRun, importer: ImportThread | None) -> None:
    summary = measured.summary
    report.duration_s = summary["duration_us"] / 1e6
    report.whole = window("whole run", measured.samples, report.duration_s)
    report.kinds = [
        window(kind, [sample for sample in measured.samples if sample[0] == kind], report.duration_s)
        for kind, _, _ in MIX
    ]
    report.socket_errors = {name: summary[key] for name, key in SOCKET_ERRORS.items()}
    report.wrk = summary
    report.create_wraps = measured.wraps.get("create", 0)
    report.error_answers = measured.error_answers
    if importer is None:
        return
    result = importer.result
    report.import_result = result
    if importer.started_at is None:
        return
    ended = importer.ended_at or measured.ended
    result.started_s = importer.started_at - measured.started
    result.ended_s = ended - measured.started
    low, high = int(importer.started_at * 1e6), int(min(ended, measured.ended) * 1e6)
    report.during_import = window(
        "while the import ran",
        [sample for sample in measured.samples if low <= sample[2] < high],
        max(high - low, 0) / 1e6,
    )


SOCKET_ERRORS = {"connect": "connect_errors", "read": "read_errors", "write": "write_errors", "timeout": "timeouts"}
_LOG_LINE = re.compile(r"Traceback|Error|Exception|CRITICAL|WORKER TIMEOUT|Worker exiting|exited|signal", re.I)


def _server_log(path: Path, *, workers: int) -> list[str]:
    """What the server logged that matters here: errors, tracebacks, worker timeouts and restarts."""
    if not path.exists():
        return []
    lines = path.read_text(errors="replace").splitlines()
    boots = [line for line in lines if "Booting worker" in line]
    kept = [line for line in lines if _LOG_LINE.search(line)]
    if len(boots) > workers:
        kept.append(f"{len(boots) - workers} worker restart(s): " + " / ".join(boots[workers:][:5]))
    unique = list(dict.fromkeys(line.strip() for line in kept))
    return unique[:40]


def _judge(report: LoadTestReport) -> None:
    failures, warnings = report.failures, report.warnings
    windows = [window for window in (report.whole, report.during_import) if window is not None]
    if report.whole is None or not report.whole.requests:
        failures.append("no answer at all")
    for item in windows:
        if item.count("5xx"):
            failures.append(f"{item.label}: {item.count('5xx')} answers 5xx")
        if item.p99_ms >= P99_LIMIT_MS:
            failures.append(f"{item.label}: p99 {item.p99_ms:.1f} ms ≥ {P99_LIMIT_MS:g} ms")
    errors = {name: count for name, count in report.socket_errors.items() if count}
    if errors:
        failures.append("socket errors: " + ", ".join(f"{count} {name}" for name, count in errors.items()))
    if report.import_result is not None and report.import_result.error:
        failures.append(f"import: {report.import_result.error}")
    if report.whole is not None:
        for status_class in ("3xx", "4xx"):
            if report.whole.count(status_class):
                warnings.append(f"{report.whole.count(status_class)} answers {status_class} (the mix expects none)")
    if report.create_wraps:
        warnings.append(f"the creates ran out {report.create_wraps} time(s) and repeated (409s): raise MAX_RATE")
    ended = report.import_result.ended_s if report.import_result is not None else None
    if ended is not None and report.whole is not None and ended > report.whole.seconds:
        warnings.append(f"the import outlasted the load ({ended:.0f} s > {report.whole.seconds:.0f} s)")
    if report.warmup is not None and report.warmup.count("5xx"):
        warnings.append(f"warm-up: {report.warmup.count('5xx')} answers 5xx")
    if report.server_log:
        warnings.append(f"the server logged {len(report.server_log)} error line(s)")


# --- the table ------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def render(report: LoadTestReport) -> str:
    lines = [
        f"| | |\n|---|---|\n| date | {report.date} |\n| command | `{report.command}` |",
        f"| machine | {report.machine} |\n| server | {report.server} |",
        f"| load | {report.load} |\n| data set | {report.data_set} |",
    ]
    if report.load_average:
        before, after = report.load_average
        lines.append(f"| load average | {before:.1f} → {after:.1f} (1 minute, this run's own processes included) |")
    lines += [
        "",
        "| span | requests | req/s | 2xx | 4xx | 5xx | socket errors | p50 ms | p99 ms | max ms | p99 < 200 ms |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    socket_errors = sum(report.socket_errors.values())
    for item in (report.whole, report.during_import):
        if item is None:
            continue
        errors = str(socket_errors) if item is report.whole else "—"
        ok = "✅" if item.p99_ms < P99_LIMIT_MS and not item.count("5xx") else "❌"
        lines.append(
            f"| {item.label} ({item.seconds:.0f} s) | {item.requests:,} | {item.rate:,.0f} | {item.count('2xx'):,} | "
            f"{item.count('4xx'):,} | {item.count('5xx'):,} | {errors} | {_ms(item.p50_ms)} | {_ms(item.p99_ms)} | "
            f"{_ms(item.max_ms)} | {ok} |"
        )
    if report.import_result is not None:
        result = report.import_result
        rate = f"{result.rate:,.0f} rows/s" if result.rate else "—"
        window_text = (
            f", from {result.started_s:.1f} s to {result.ended_s:.1f} s of the load"
            if result.started_s is not None and result.ended_s is not None
            else ""
        )
        seconds = f"{result.seconds:.1f} s" if result.seconds else "—"
        lines += [
            "",
            f"Import: {result.rows:,} rows (export of {result.source}, ids dropped) in {seconds}, {rate}"
            f"{window_text}; {result.note or ''}{' — ' + result.error if result.error else ''}",
        ]
    lines += [
        "",
        "| kind | share | requests | 2xx | 4xx | 5xx | p50 ms | p99 ms | max ms |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    shares = {kind: weight for kind, weight, _ in MIX}
    for item in report.kinds:
        lines.append(
            f"| {LABELS[item.label]} | {shares[item.label]:.3g}% | {item.requests:,} | {item.count('2xx'):,} | "
            f"{item.count('4xx'):,} | {item.count('5xx'):,} | {_ms(item.p50_ms)} | {_ms(item.p99_ms)} | "
            f"{_ms(item.max_ms)} |"
        )
    lines.append("")
    lines.append("PASSED" if report.passed else "FAILED: " + "; ".join(report.failures))
    return "\n".join(lines) + "\n"
