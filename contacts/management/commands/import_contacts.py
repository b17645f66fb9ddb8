import csv
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account
from contacts.import_writers import import_in_parallel
from contacts.importers import (
    ContactImporter,
    ImportFileError,
    count_data_rows,
    open_text,
    read_records,
    refresh_account_statistics,
    validated_rows,
)
from contacts_project.bulk import fewer_gc_passes
from contacts_project.progress import Progress


class Command(BaseCommand):
    help = (
        "Import contacts from a CSV or JSONL file (or - for stdin) into an account. Rows are upserted: matched "
        "by id, then phone, then email, else created. Bad rows are skipped and listed in an error file; the "
        "command then exits with status 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="a .csv or .jsonl file, or - for standard input")
        parser.add_argument("--account", required=True, help="the account's name")
        parser.add_argument("--format", choices=["csv", "jsonl"], help="default: from the file's extension (csv for -)")
        parser.add_argument("--dry-run", action="store_true", help="validate and match, write nothing")
        parser.add_argument("--errors", help="where to write rejected rows (default: FILE.errors.csv)")
        parser.add_argument("--batch-size", type=int, default=5000, help="rows per committed batch")
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="processes that validate and write batches (default: one per core)",
        )

    def handle(self, *args, file, account, format, dry_run, errors, batch_size, workers, **options):
        fmt = format or ("jsonl" if file.endswith((".jsonl", ".ndjson")) else "csv")
        if file != "-" and not Path(file).is_file():
            raise CommandError(f"No such file: {file}")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        target = Account.objects.filter(name=account).first()
        if target is None:
            raise CommandError(f"No account named {account!r} (create it with create_api_key --account).")
        errors_path = Path(errors or (f"{file}.errors.csv" if file != "-" else "import-errors.csv"))
        workers = workers or _cpu_count()

        started = time.monotonic()
        progress = Progress(total=count_data_rows(file, fmt), unit="rows", stream=self.stderr._out)
        try:
            with open_text(file, sys.stdin) as stream, progress, fewer_gc_passes():
                if workers > 1:
                    summary = import_in_parallel(
                        stream,
                        fmt,
                        target,
                        workers=workers,
                        batch_size=batch_size,
                        dry_run=dry_run,
                        progress=progress.advance,
                    )
                else:
                    rows = validated_rows(read_records(stream, fmt), fmt, account_id=target.pk)
                    summary = ContactImporter(target, dry_run=dry_run, batch_size=batch_size).run(
                        rows, progress=progress.advance
                    )
        except ImportFileError as error:
            raise CommandError(str(error)) from None
        except UnicodeDecodeError as error:
            raise CommandError(
                f"The file is not UTF-8 text (byte {error.start} of a read); rows before it were imported."
            ) from None
        if not dry_run:
            refresh_account_statistics(summary)
        elapsed = time.monotonic() - started

        if summary.errors:
            with errors_path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["row", "field", "reason"])
                writer.writerows(summary.errors)
        verb = "Would import" if dry_run else "Imported"
        rate = summary.rows / elapsed if elapsed else 0.0
        self.stdout.write(
            f"{verb} {summary.rows} rows into {target.name}: {summary.created} created, {summary.updated} updated, "
            f"{summary.unchanged} unchanged, {summary.skipped} skipped in {elapsed:.1f}s ({rate:,.0f} rows/s)."
        )
        if summary.skipped:
            raise CommandError(
                f"{summary.skipped} row(s) skipped; reasons in {errors_path} (row 1 is the first data row).",
                returncode=1,
            )


def _cpu_count() -> int:
    import os

    return max(len(os.sched_getaffinity(0)), 1)
