"""An import written by several processes at once, with the file's order kept.

One PostgreSQL backend spends ~120 µs of CPU on each new contact (a heap
tuple, ~20 index entries, its preference events and their foreign-key
checks), and the Python work on the row came on top of it: with one writing
connection a 1M-row import could never use the second core. So ``--workers``
processes each take whole batches, in turn (batch ``n`` goes to process
``n % workers``), and parse, validate, match and write them on their own
connection. The reading process only cuts the file into batches of records
(``RecordFile``), as text.

Every row must still see what the rows before it in the file did. Three rules
give the result of a one-by-one import:

1. **Locks are taken in file order.** Batch ``n`` runs its ``SELECT … FOR
   UPDATE`` only once batch ``n - 1``'s has returned. A stored contact that
   both touch is then updated by ``n - 1`` first: ``n`` waits for the lock and
   reads the row as ``n - 1`` committed it (PostgreSQL re-checks the row, so a
   contact that gave up the phone ``n`` looks for is no longer found).
2. **A batch that shares a phone or email with an earlier batch still in
   flight waits for that batch's commit before it locks.** What an earlier
   batch creates, or gives to a contact, is not visible to a lookup until it
   commits; every such contact holds one of the earlier batch's own phones or
   emails, which this rule covers.
3. **Batches commit in file order.** If a batch is rolled back (a unique
   violation from a concurrent API writer, a lock cycle with one), the later
   batches in flight roll back too and match again after it.

A batch is one transaction, as in a single-process import: a kill loses at
most the batches in flight, and a re-run converges.
"""

import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from django.db import connections

from contacts.importers import ContactImporter, RecordFile, Row, Summary, clean_row

PR_SET_PDEATHSIG = 1  # prctl(2)
POLL_SECONDS = 0.5


class WriterFailed(Exception):
    """A writing process raised: its traceback is the message."""


class BatchOrder:
    """The turns the writing processes share (rules 1 to 3 of the module docstring), in shared memory.

    A batch's lock counts only if no earlier batch was rolled back after the
    batch began it: rollbacks are numbered, and the last ``SLOTS`` of them are
    kept (more than that since a batch began its lock counts as one).
    """

    SLOTS = 1024

    def __init__(self, context):
        self._changed = context.Condition()
        self._lock_turn = context.RawValue("q", 0)  # the batch that may lock next
        self._commit_turn = context.RawValue("q", 0)  # the batch that may commit next
        self._rollbacks = context.RawValue("q", 0)  # how many so far
        self._rolled_back = context.RawArray("q", self.SLOTS)  # rollback n's batch at n % SLOTS

    def _wait(self, ready: Callable[[], bool]) -> int:
        """Until ``ready()``; the rollbacks so far, read in the same hold of the lock as ``ready()``'s last answer."""
        with self._changed:
            while not ready():
                self._changed.wait(POLL_SECONDS)
            return self._rollbacks.value

    def _overtaken(self, number: int, token: int) -> bool:
        """Whether a batch before ``number`` was rolled back since rollback ``token``."""
        since = self._rollbacks.value - token
        if since > self.SLOTS:
            return True
        return any(self._rolled_back[(token + k) % self.SLOTS] < number for k in range(since))

    def wait_to_lock(self, number: int, shares_keys_with: Callable[[int, int], int | None]) -> int:
        """Until batch ``number`` may lock; the token to give ``locked()`` and ``wait_to_commit()``.

        ``shares_keys_with(first, last)`` names the latest of those batches
        (in flight) that shares a phone or email with this one.
        """

        def my_turn() -> bool:
            return self._lock_turn.value == number

        while True:
            # Read with the turn, so a rollback just after it counts against this lock.
            token = self._wait(my_turn)
            earlier = shares_keys_with(self._commit_turn.value, number - 1)
            if earlier is None:
                return token
            self._wait(lambda earlier=earlier: self._commit_turn.value > earlier or not my_turn())
            with self._changed:
                if my_turn() and not self._overtaken(number, token):
                    return token

    def locked(self, number: int, token: int) -> None:
        with self._changed:
            if self._lock_turn.value == number and not self._overtaken(number, token):
                self._lock_turn.value = number + 1
                self._changed.notify_all()

    def wait_to_commit(self, number: int, token: int) -> bool:
        """Wait for batch ``number``'s turn to commit; False when it must match again (it was overtaken)."""
        self._wait(lambda: self._commit_turn.value == number or self._overtaken(number, token))
        with self._changed:
            return not self._overtaken(number, token)

    def committed(self, number: int) -> None:
        with self._changed:
            self._commit_turn.value = number + 1
            self._changed.notify_all()

    def rolled_back(self, number: int) -> None:
        """Batch ``number`` must lock again, and so must every later batch that began its lock."""
        with self._changed:
            self._rolled_back[self._rollbacks.value % self.SLOTS] = number
            self._rollbacks.value += 1
            self._lock_turn.value = min(self._lock_turn.value, number)
            self._changed.notify_all()


def _die_with(parent: int) -> None:
    """Be killed with the importing process, as its batches are: a killed import must leave no writer behind.

    ``daemon`` processes are stopped only when their parent exits normally.
    """
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the request
        os._exit(1)


def batch_keys(rows: list[Row]) -> frozenset[str]:
    """The phones (E.164, so "+…") and emails (with an "@") a batch's rows look up, give or create."""
    keys = set()
    for row in rows:
        if not row.errors:
            if row.phone:
                keys.add(row.phone)
            if row.fields.get("email"):
                keys.add(row.fields["email"])
    return frozenset(keys)


class KeyBoard:
    """Each batch's phones and emails, as hashes, in shared memory, for the batches after it (rule 2).

    Only the last ``workers`` batches can be in flight, so ``2 * workers``
    slots are enough: a batch's slot is taken again only once every batch
    that could ask for it has committed. Hashes (forked processes share
    Python's string hash seed) may collide; a collision only makes a batch
    wait for a commit it did not need to.
    """

    def __init__(self, context, *, workers: int, batch_size: int):
        self.workers = workers
        self.slots = 2 * workers
        self.capacity = 2 * batch_size  # a row looks up at most a phone and an email
        self._lock = context.Lock()
        self._hashes = context.RawArray("q", self.slots * self.capacity)
        self._count = context.RawArray("q", self.slots)
        self._batch = context.RawArray("q", [-1] * self.slots)

    def publish(self, number: int, keys: frozenset[str]) -> None:
        slot = number % self.slots
        start = slot * self.capacity
        hashes = [hash(key) for key in keys]
        with self._lock:
            self._hashes[start : start + len(hashes)] = hashes
            self._count[slot] = len(hashes)
            self._batch[slot] = number

    def hashes(self, number: int) -> set[int]:
        slot = number % self.slots
        start = slot * self.capacity
        with self._lock:
            if self._batch[slot] != number:
                raise RuntimeError(f"Batch {number}'s keys were taken over by batch {self._batch[slot]}.")
            return set(self._hashes[start : start + self._count[slot]])

    def latest_sharing(self, keys: frozenset[str], first: int, last: int) -> int | None:
        """The latest of batches ``first``…``last`` that shares one of ``keys``."""
        if not keys:
            return None
        hashes = {hash(key) for key in keys}
        return next(
            (number for number in range(last, first - 1, -1) if not hashes.isdisjoint(self.hashes(number))), None
        )


@dataclass
class Turn:
    """One batch's view of the shared order, for ``ContactImporter.import_batch``."""

    number: int
    order: BatchOrder
    shares_keys_with: Callable[[int, int], int | None]

    token: int = 0

    def wait_to_lock(self) -> None:
        self.token = self.order.wait_to_lock(self.number, self.shares_keys_with)

    def locked(self) -> None:
        self.order.locked(self.number, self.token)

    def wait_to_commit(self) -> bool:
        return self.order.wait_to_commit(self.number, self.token)

    def committed(self) -> None:
        self.order.committed(self.number)

    def rolled_back(self) -> None:
        self.order.rolled_back(self.number)


class _Writer:
    """What one writing process does with the batches it is given."""

    def __init__(self, index, *, source, account, dry_run, order, board, tasks, results):
        self.index, self.source, self.account, self.dry_run = index, source, account, dry_run
        self.order, self.board, self.tasks, self.results = order, board, tasks, results

    def run(self, parent: int) -> None:
        _die_with(parent)
        try:
            importer = ContactImporter(self.account, dry_run=self.dry_run)
            importer.prepare_connection()
            for number, first, text in iter(self.tasks[self.index].get, None):
                rows = [
                    clean_row(row_number, raw, self.source.fmt, self.account.pk)
                    for row_number, raw in self.source.records(first, text)
                ]
                if self.dry_run:  # nothing is written: no batch can see another's work, in any order
                    turn = None
                else:
                    keys = batch_keys(rows)
                    self.board.publish(number, keys)
                    turn = Turn(number, self.order, partial(self.board.latest_sharing, keys))
                self.results.put((number, len(rows), importer.import_batch(rows, turn)))
        except BaseException:
            self.results.put((None, 0, traceback.format_exc()))
        finally:
            connections.close_all()


def import_in_parallel(stream, fmt: str, account, *, workers: int, batch_size: int, dry_run: bool, progress) -> Summary:
    """Import the file with ``workers`` writing processes; the summary, errors in row order."""
    source = RecordFile(stream, fmt)
    context = multiprocessing.get_context("fork")
    order = BatchOrder(context)
    # Two batches queued per process keep it busy and the reading process's memory flat.
    tasks = [context.Queue(maxsize=2) for _ in range(workers)]
    board = KeyBoard(context, workers=workers, batch_size=batch_size)
    results = context.Queue()
    connections.close_all()  # a forked process must open its own connection
    processes = [
        context.Process(
            target=_Writer(
                index,
                source=source,
                account=account,
                dry_run=dry_run,
                order=order,
                tasks=tasks,
                board=board,
                results=results,
            ).run,
            args=(os.getpid(),),
            daemon=True,
        )
        for index in range(workers)
    ]
    for process in processes:
        process.start()
    done: dict[int, Summary] = {}
    dispatched = 0

    def check_alive() -> None:
        # A process that raised reports it and exits with 0, as one does after its last batch.
        if any(process.exitcode not in (None, 0) for process in processes):
            raise WriterFailed("An import process was killed.")

    def collect(*, until_all: bool) -> None:
        """Take the results reported so far; with ``until_all``, wait for every batch handed over."""
        while not (until_all and len(done) == dispatched):
            try:
                number, rows, outcome = results.get(timeout=POLL_SECONDS) if until_all else results.get_nowait()
            except queue.Empty:
                if not until_all:
                    return
                check_alive()
                continue
            if number is None:
                raise WriterFailed(outcome)
            done[number] = outcome
            progress(rows)

    def hand_over(index: int, task) -> None:
        while True:
            try:
                tasks[index].put(task, timeout=POLL_SECONDS)
                return
            except queue.Full:
                collect(until_all=False)
                check_alive()

    try:
        chunks = source.chunks(batch_size)
        while True:
            try:
                first, text = next(chunks)
            except StopIteration:
                read_error = None
                break
            except Exception as error:  # not UTF-8: the batches read before it still finish, as in one process
                read_error = error
                break
            hand_over(dispatched % workers, (dispatched, first, text))
            dispatched += 1
            collect(until_all=False)
        for index in range(workers):
            hand_over(index, None)
        collect(until_all=True)
        if read_error is not None:
            raise read_error
    except BaseException:
        for process in processes:
            process.kill()
        raise
    finally:
        for process in processes:
            process.join()
    summary = Summary()
    for number in sorted(done):
        summary.add(done[number])
    return summary
