import shlex
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from bench.dataset import DataSetSpec
from bench.load import GENERATORS
from bench.report import render
from bench.runner import BenchOptions, run

DEFAULT_OUTPUT = Path(settings.BASE_DIR) / "docs" / "PERFORMANCE.md"


class Command(BaseCommand):
    help = (
        "Run the benchmark suite (bench/, issue #6): build the data set in its own database (once), serve the API "
        "with gunicorn (DJANGO_DEBUG=0, 2 workers), load every operation with wrk, measure the SQL and no-database "
        "floors, import and export a million rows, then print the table and write it to docs/PERFORMANCE.md."
    )

    def add_arguments(self, parser):
        defaults = DataSetSpec()
        parser.add_argument(
            "--database",
            default="contacts_bench",
            help="database on the configured server that holds the data set (created and migrated when missing; "
            "default contacts_bench)",
        )
        parser.add_argument("--contacts", type=int, default=defaults.contacts, help="contacts of the measured account")
        parser.add_argument("--neighbours", type=int, default=defaults.neighbours, help="other accounts")
        parser.add_argument(
            "--neighbour-contacts", type=int, default=defaults.neighbour_contacts, help="contacts of each other account"
        )
        parser.add_argument("--lists", type=int, default=defaults.lists, help="lists per account")
        parser.add_argument("--segments", type=int, default=defaults.segments, help="segments per account")
        parser.add_argument("--build-only", action="store_true", help="build the data set and stop")
        parser.add_argument(
            "--only",
            help="comma-separated operations (or prefixes) to measure: livez, get, list, search, segment, "
            "list_members, optouts, activity, create, update, export, import, reimport. The table is then "
            "printed, and written only with --output.",
        )
        parser.add_argument("--duration", type=float, default=10, help="seconds of load per operation (default 10)")
        parser.add_argument("--warmup", type=float, default=2, help="seconds of unmeasured load first (default 2)")
        parser.add_argument(
            "--requests",
            type=int,
            default=0,
            help="stop each load run after this many answers (tiny smoke runs); default: run for --duration",
        )
        parser.add_argument(
            "--load-generator",
            choices=GENERATORS,
            default="auto",
            help="wrk, or the Python load generator (fractional durations, less precise); auto: wrk when installed",
        )
        parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
        parser.add_argument(
            "--connections", type=int, default=None, help="concurrent connections of the load (default: --workers)"
        )
        parser.add_argument("--output", help="where to write the table (default docs/PERFORMANCE.md)")

    def handle(self, *args, **options):
        for name in ("contacts", "neighbours", "neighbour_contacts", "lists", "segments", "requests"):
            if options[name] < 0:
                raise CommandError(f"--{name.replace('_', '-')} must be 0 or more.")
        if options["contacts"] < 1 or options["workers"] < 1 or options["duration"] <= 0:
            raise CommandError("--contacts, --workers and --duration must be positive.")
        only = {name.strip() for name in options["only"].split(",") if name.strip()} if options["only"] else None
        output = Path(options["output"]) if options["output"] else (DEFAULT_OUTPUT if only is None else None)
        bench_options = BenchOptions(
            database=options["database"],
            spec=DataSetSpec(
                contacts=options["contacts"],
                neighbours=options["neighbours"],
                neighbour_contacts=options["neighbour_contacts"],
                lists=options["lists"],
                segments=options["segments"],
            ),
            only=only,
            duration=options["duration"],
            warmup=options["warmup"],
            max_requests=options["requests"],
            generator=options["load_generator"],
            workers=options["workers"],
            connections=options["connections"] or options["workers"],
            build_only=options["build_only"],
            command=_command_line(),
            log=lambda line: self.stderr.write(line),
        )
        report = run(bench_options)
        if report is None:
            return
        markdown = render(report)
        self.stdout.write(markdown)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(markdown, encoding="utf-8")
            self.stderr.write(f"Wrote {output}")
        for line in report.failures():
            self.stderr.write(self.style.ERROR(f"failed: {line}"))
        for line in report.misses():
            self.stderr.write(self.style.WARNING(f"floor missed: {line}"))


def _command_line() -> str:
    """How this run was started, for the report (``make bench`` passes its arguments through)."""
    argv = sys.argv[1:] if sys.argv and sys.argv[0].endswith("manage.py") else ["bench"]
    return "python manage.py " + " ".join(shlex.quote(arg) for arg in argv)
