"""Django's PostgreSQL backend with a health check that costs no round trip.

``CONN_HEALTH_CHECKS`` makes Django check a persistent connection before a
request first uses it, so the first request after a database restart, or
after an operator killed the backend, reconnects instead of failing. Django
checks with ``SELECT 1``: a round trip on every request, which on a
primary-key read was one of its four statements.

An idle connection receives nothing unless the server has something to say,
and a server that ends a session says so: the backend sends its FATAL error
and closes the socket. So a socket with nothing to read is a live
connection, which ``select`` with a zero timeout tells without a round trip.
When something did arrive (the server's goodbye, or rarely a parameter change
announced by a reload), or the connection is not idle, Django's ``SELECT 1``
decides, and reads whatever was waiting.

What neither check can see is a peer that vanished without closing (a cut
network path): ``SELECT 1`` would then wait for TCP to give up, and the poll
says usable and the request's own query waits instead. Both end in the same
503 (``contacts_project.api.exceptions``).
"""

import select

import psycopg
from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed:
            return False
        pgconn = connection.pgconn
        if pgconn.status == pq.ConnStatus.OK and pgconn.transaction_status == pq.TransactionStatus.IDLE:
            try:
                readable, _, _ = select.select([pgconn.socket], [], [], 0)
            except (OSError, ValueError, psycopg.Error):
                return False
            if not readable:
                return True
        return super().is_usable()
