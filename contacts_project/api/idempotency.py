"""Idempotency keys on every POST: a retried request gets the first answer, never a second write.

A client sends ``Idempotency-Key: <1 to 255 printable ASCII characters>``
with a POST; keys are scoped to the account (shared by its API keys).

1. Before the view runs, the key is claimed by one ``INSERT … ON CONFLICT``
   that commits at once (the API runs in autocommit), so a concurrent repeat
   sees the claim. The same statement takes over a record older than
   ``IDEMPOTENCY_KEY_TTL_SECONDS`` (24 h: expired, treated as absent) and an
   in-progress claim older than ``IDEMPOTENCY_LOCK_SECONDS`` (its worker died
   before it could finish or release it), so neither ever needs a purge to be
   reusable.
2. A repeat that finds a live record compares fingerprints (SHA-256 of the
   method, the path with its query string, and the body): another request is a
   422 ``idempotency_key_reused``; a claim still running is a 409
   ``idempotency_key_in_progress`` with ``Retry-After``; a finished one is
   replayed (status, body, ``Content-Type``, ``Location``) with
   ``Idempotent-Replayed: true``.
3. After the view, the response is stored, unless it is a 5xx: a 5xx or an
   exception releases the claim so that a retry runs the request again.

Requests without the header, and other methods, are untouched and cost no
query. Records past their 24 hours are deleted by ``manage.py purge_expired``.
"""

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Subquery
from django.db.models.functions import Now
from django.http import HttpResponse
from rest_framework.exceptions import ValidationError

from accounts.models import IdempotencyRecord
from contacts_project.api.errors import IDEMPOTENCY_KEY_HEADER, IdempotencyKeyInProgress, IdempotencyKeyReused

logger = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"[\x20-\x7e]{1,255}")
KEY_MESSAGE = "Must be 1 to 255 printable ASCII characters."
REPLAYED_HEADER = "Idempotent-Replayed"
# What a replay repeats besides status and body.
STORED_HEADERS = ("Content-Type", "Location")

_table = IdempotencyRecord._meta.db_table
CLAIM_SQL = f"""
    INSERT INTO {_table} AS r (account_id, key, fingerprint, status_code, response_headers, response_body, created_at)
    VALUES (%(account)s, %(key)s, %(fingerprint)s, NULL, '{{}}', '', now())
    ON CONFLICT (account_id, key) DO UPDATE SET
        fingerprint = EXCLUDED.fingerprint, status_code = NULL, response_headers = '{{}}', response_body = '',
        created_at = EXCLUDED.created_at
    WHERE r.created_at < now() - %(ttl)s OR (r.status_code IS NULL AND r.created_at < now() - %(lock)s)
    RETURNING id, created_at
"""


@dataclass(frozen=True)
class Claim:
    """This request's hold on a record; ``claimed_at`` tells it from a later takeover of the same row."""

    record_id: int
    claimed_at: datetime


class IdempotentReplay(Exception):
    """Raised from ``initial()`` to answer the stored response instead of running the view."""

    def __init__(self, response: HttpResponse):
        super().__init__()
        self.response = response


def idempotency_key(request) -> str | None:
    """The request's ``Idempotency-Key``, None without one; 400 naming the header when malformed."""
    key = request.META.get("HTTP_IDEMPOTENCY_KEY")
    if key is not None and not KEY_PATTERN.fullmatch(key):
        raise ValidationError({IDEMPOTENCY_KEY_HEADER: [KEY_MESSAGE]}, code="invalid")
    return key


def request_fingerprint(request) -> str:
    # Read before any parser touches the body; the parser then reads this copy.
    digest = hashlib.sha256(f"{request.method} {request.get_full_path()}\n".encode())
    digest.update(request.body)
    return digest.hexdigest()


def idempotency_claim(*, account, key: str, fingerprint: str) -> Claim:
    """Claim ``key`` for a new request, or raise what a repeat gets: 422, 409 or ``IdempotentReplay``."""
    parameters = {
        "account": account.pk,
        "key": key,
        "fingerprint": fingerprint,
        "ttl": timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS),
        "lock": timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS),
    }
    # A record released between the INSERT and the SELECT is claimed again.
    for _ in range(3):
        with connection.cursor() as cursor:
            cursor.execute(CLAIM_SQL, parameters)
            row = cursor.fetchone()
        if row is not None:
            return Claim(*row)
        record = IdempotencyRecord.objects.filter(account=account, key=key).first()
        if record is None:
            continue
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        if record.status_code is None:
            raise IdempotencyKeyInProgress()
        response = HttpResponse(record.response_body, status=record.status_code, headers=record.response_headers)
        response[REPLAYED_HEADER] = "true"
        raise IdempotentReplay(response)
    raise IdempotencyKeyInProgress()


def _claimed(claim: Claim):
    return IdempotencyRecord.objects.filter(pk=claim.record_id, created_at=claim.claimed_at, status_code__isnull=True)


def idempotency_release(*, claim: Claim) -> None:
    """Forget the claim so that a retry runs the request again (after a 5xx or an exception)."""
    try:
        _claimed(claim).delete()
    except DatabaseError:
        # The record stays in progress until IDEMPOTENCY_LOCK_SECONDS pass.
        logger.exception("could not release idempotency record %s", claim.record_id)


def idempotency_complete(*, claim: Claim, response) -> None:
    """Store the response for replays; a 5xx is not an answer to keep, so it releases the claim."""
    if response.status_code >= 500 or response.streaming:
        idempotency_release(claim=claim)
        return
    if not getattr(response, "is_rendered", True):
        response.render()
    try:
        _claimed(claim).update(
            status_code=response.status_code,
            response_headers={name: response[name] for name in STORED_HEADERS if name in response},
            response_body=response.content.decode(),
        )
    except DatabaseError:
        # The client still gets its answer; its retries get a 409 until the
        # claim is released (or taken over after IDEMPOTENCY_LOCK_SECONDS).
        logger.exception("could not store idempotency record %s", claim.record_id)
        idempotency_release(claim=claim)


def idempotency_purge_expired(*, batch_size: int = 10_000) -> int:
    """Delete records past their TTL, in batches that each hold their locks briefly; return how many."""
    cutoff = Now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    total = 0
    while True:
        batch = IdempotencyRecord.objects.filter(created_at__lt=cutoff).values("pk")[:batch_size]
        deleted, _ = IdempotencyRecord.objects.filter(pk__in=Subquery(batch)).delete()
        total += deleted
        if deleted < batch_size:
            return total


class IdempotentPostMixin:
    """Runs the protocol above around every POST handler of a viewset.

    The claim is taken in ``initial()``, after authentication and the
    throttle (a 401 or 429 claims nothing), and settled in
    ``finalize_response()``, which every answer goes through, error answers
    included. ``dispatch()`` releases a claim an uncaught exception left behind.
    """

    _idempotency_claim = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method == "POST":
            key = idempotency_key(request)
            if key is not None:
                self._idempotency_claim = idempotency_claim(
                    account=request.user, key=key, fingerprint=request_fingerprint(request)
                )

    def handle_exception(self, exc):
        if isinstance(exc, IdempotentReplay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        claim, self._idempotency_claim = self._idempotency_claim, None
        if claim is not None:
            idempotency_complete(claim=claim, response=response)
        return response

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            claim, self._idempotency_claim = self._idempotency_claim, None
            if claim is not None:
                idempotency_release(claim=claim)
