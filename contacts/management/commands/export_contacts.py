import codecs
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from accounts.models import Account
from contacts.exporters import FORMATS, contacts_for_export, export_contacts
from contacts_project.progress import Progress
from lists.models import ContactList
from segments.models import Segment


class Command(BaseCommand):
    help = (
        "Export an account's contacts (optionally a segment's or a list's members) as CSV or JSONL, "
        "newest first, in the columns import_contacts reads. Streams with constant memory. "
        "Data goes to stdout (or --output); progress and the summary go to stderr."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="account name")
        parser.add_argument("--format", choices=FORMATS, help="default: jsonl when --output ends in .jsonl, else csv")
        parser.add_argument("--segment", help="export only this segment's current members (a seg_ id)")
        parser.add_argument("--list", dest="list_id", help="export only this list's members (a lst_ id)")
        parser.add_argument("--output", help="file to write (default: stdout)")

    def handle(self, *args, account, format, segment, list_id, output, **options):
        found = Account.objects.filter(name=account).first()
        if found is None:
            raise CommandError(f"Unknown account: {account}")
        # Ids resolve inside the account: another account's id is as unknown as one that never existed.
        segment_found = None
        if segment is not None:
            segment_found = Segment.objects.for_account(found).filter(pk=segment).first()
            if segment_found is None:
                raise CommandError(f"Unknown segment: {segment}")
        list_found = None
        if list_id is not None:
            list_found = ContactList.objects.for_account(found).filter(pk=list_id).first()
            if list_found is None:
                raise CommandError(f"Unknown list: {list_id}")
        to_file = output not in (None, "-")
        if to_file and not Path(output).parent.is_dir():
            raise CommandError(f"No such directory: {Path(output).parent}")
        fmt = format or ("jsonl" if to_file and output.endswith(".jsonl") else "csv")

        contacts = contacts_for_export(account=found, segment=segment_found, contact_list=list_found)
        with connection.cursor() as cursor:
            # One long statement: the web timeout does not apply to an operator's export.
            cursor.execute("SET statement_timeout = 0")
        started = time.monotonic()
        progress = Progress(total=None, unit="rows", stream=self.stderr._out)
        try:
            with progress, self._file_writer(output) if to_file else self._stdout_writer() as write:
                rows = export_contacts(contacts=contacts, fmt=fmt, write=write, on_rows=progress.advance)
        except BrokenPipeError:
            # The reader went away (`export_contacts … | head`). Point stdout at
            # /dev/null so the interpreter's final flush cannot fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise CommandError("Export stopped: stdout was closed by its reader.") from None
        elapsed = time.monotonic() - started
        rate = rows / elapsed if elapsed else 0.0
        where = output if to_file else "stdout"
        # stderr: stdout carries nothing but the data.
        self.stderr.write(
            f"Exported {rows:,} contacts ({fmt}) to {where} in {elapsed:.1f}s ({rate:,.0f} rows/s).",
            style_func=self.style.SUCCESS,
        )

    @contextmanager
    def _file_writer(self, output: str):
        """Write to a temporary file beside ``output``, renamed into place only when complete."""
        path = Path(output)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as file:
                yield file.write
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @contextmanager
    def _stdout_writer(self):
        """Bytes straight to stdout's buffer; a text stream (call_command's StringIO) gets decoded text."""
        self.stdout.flush()
        buffer = getattr(self.stdout, "buffer", None)
        if buffer is not None:
            yield buffer.write
            buffer.flush()
            return
        decoder = codecs.getincrementaldecoder("utf-8")()
        yield lambda data: self.stdout.write(decoder.decode(data), ending="")
        self.stdout.write(decoder.decode(b"", final=True), ending="")
