"""The benchmark suite (issue #6): ``python manage.py bench`` or ``make bench``.

One command builds a multi-tenant data set, serves the API the production way
(gunicorn, ``DJANGO_DEBUG=0``, 2 sync workers, persistent connections), loads
every operation over HTTP from a separate process (wrk), measures beside each
the floors that bound it (the same SQL run directly with psycopg, and the
no-database view ``/livez``), then the bulk import and export, and writes the
table to ``docs/PERFORMANCE.md``.

Modules, in the order a run uses them:

* ``database``   the bench's own database on the configured server (``contacts_bench``)
* ``dataset``    build the data set (idempotent) and the scratch accounts of a run
* ``operations`` what is measured: the requests of each operation and its floors
* ``server``     gunicorn as a subprocess; its workers' memory
* ``load``       wrk (``wrk_report.lua``) or a Python load generator when wrk is missing
* ``sqlfloor``   capture the SQL of one in-process request, replay it with psycopg
* ``bulk``       import, re-import and export of the big account; ``psql \\copy``
* ``report``     the Markdown table, printed and written
* ``runner``     the whole run

No timing is asserted anywhere in the test suite; ``bench/tests`` only checks
that a tiny run produces every row.
"""
