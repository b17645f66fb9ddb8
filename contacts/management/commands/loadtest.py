import json
import shlex
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from bench.loadtest import DataSetMissing, LoadTestOptions, render, run


class Command(BaseCommand):
    help = (
        "Load test (issue #7, docs/RELIABILITY.md): a mixed workload (gets, list pages, searches, creates, "
        "updates, segment previews) with wrk against gunicorn (DJANGO_DEBUG=0, 2 workers, rate limit off) on the "
        "bench's data set (build it first: manage.py bench --build-only), optionally while an import of 100,000 "
        "rows runs. Prints a table; exits 1 when a guarantee is broken (a 5xx, a socket error, p99 >= 200 ms)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--database",
            default="contacts_bench",
            help="database holding the bench's data set (default contacts_bench; never built here)",
        )
        parser.add_argument("--duration", type=float, default=300, help="seconds of measured load (default 300)")
        parser.add_argument("--warmup", type=float, default=5, help="seconds of unmeasured load first (default 5)")
        parser.add_argument("--connections", type=int, default=4, help="concurrent connections (default 4)")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
        parser.add_argument(
            "--with-import",
            action="store_true",
            help="run manage.py import_contacts of --import-rows rows into a fresh account during the load",
        )
        parser.add_argument("--import-rows", type=int, default=100_000, help="rows of the import (default 100,000)")
        parser.add_argument(
            "--import-delay", type=float, default=5, help="seconds into the load the import starts (default 5)"
        )
        parser.add_argument("--json", help="also write the whole report (per kind, error answers, log) as JSON here")

    def handle(self, *args, **options):
        if options["duration"] < 1 or options["connections"] < 1 or options["workers"] < 1:
            raise CommandError("--duration must be at least 1 s; --connections and --workers at least 1.")
        if options["warmup"] < 0 or options["import_rows"] < 1 or options["import_delay"] < 0:
            raise CommandError("--warmup and --import-delay must be 0 or more, --import-rows at least 1.")
        loadtest_options = LoadTestOptions(
            database=options["database"],
            duration=options["duration"],
            warmup=options["warmup"],
            connections=options["connections"],
            workers=options["workers"],
            with_import=options["with_import"],
            import_rows=options["import_rows"],
            import_delay=options["import_delay"],
            command=_command_line(),
            log=lambda line: self.stderr.write(line),
        )
        try:
            report = run(loadtest_options)
        except (DataSetMissing, RuntimeError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(render(report))
        if options["json"]:
            path = Path(options["json"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report.as_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            self.stderr.write(f"Wrote {path}")
        for line in report.warnings:
            self.stderr.write(self.style.WARNING(f"warning: {line}"))
        for line in report.error_answers[:10]:
            self.stderr.write(f"  {line['status']} {line['request']}: {line['body'][:300]}")
        for line in report.server_log[:10]:
            self.stderr.write(f"  server log: {line[:300]}")
        if not report.passed:
            raise CommandError("Guarantees broken: " + "; ".join(report.failures), returncode=1)


def _command_line() -> str:
    argv = sys.argv[1:] if sys.argv and sys.argv[0].endswith("manage.py") else ["loadtest"]
    return "python manage.py " + " ".join(shlex.quote(arg) for arg in argv)
