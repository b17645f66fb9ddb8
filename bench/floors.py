# ruff: noqa: RUF001 -- the floors are written as the issue writes them, with the multiplication sign.
"""Issue #6's floors, and each row's ratio to them.

A ratio is the share of its floor a measurement uses, the same way round for
every kind of floor: ``measured / limit`` for a ceiling (p50 ≤ 10 ms) and
``limit / measured`` for a minimum (≥ 800 requests/s). So ≤ 1.00 meets the
floor and a regression shows as a number growing past 1.00. A row held to
several floors shows every ratio, in the order of its floor text.
"""

from collections.abc import Callable
from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Check:
    text: str
    # (the row, every row by key) -> ratio, or None when a measurement it needs is missing
    ratio: Callable[[object, dict], float | None]


def _ceiling(measured: float | None, limit: float | None) -> float | None:
    if measured is None or not limit:
        return None
    return measured / limit


def _minimum(measured: float | None, limit: float | None) -> float | None:
    if measured is None or limit is None:
        return None
    return limit / measured if measured else float("inf")


def _http(row, name):
    return getattr(row.http, name) if row.http is not None else None


def _p50(row):
    return _http(row, "p50_ms")


def _p99(row):
    return _http(row, "p99_ms")


def _rate(row):
    return _http(row, "rate")


def _livez_rate(rows):
    livez = rows.get("livez")
    return _rate(livez) if livez is not None else None


def _first_page_p50(rows):
    first = rows.get("list_first")
    return _p50(first) if first is not None else None


def _sql_p50(row):
    return row.sql.p50_ms if row.sql is not None else None


LIST_CHECKS = (
    Check("p50 ≤ 10 ms", lambda row, rows: _ceiling(_p50(row), 10)),
    Check("p99 ≤ 30 ms", lambda row, rows: _ceiling(_p99(row), 30)),
)

FLOORS: dict[str, tuple[Check, ...]] = {
    "get": (
        Check("≥ 800 req/s", lambda row, rows: _minimum(_rate(row), 800)),
        Check("≥ 50% of /livez req/s", lambda row, rows: _minimum(_rate(row), _half(_livez_rate(rows)))),
    ),
    "list": LIST_CHECKS,
    "deep": (
        *LIST_CHECKS,
        Check("p50 ≤ 1.2 × first page p50", lambda row, rows: _ceiling(_p50(row), _times(_first_page_p50(rows), 1.2))),
    ),
    "search": (
        Check("p50 ≤ 15 ms", lambda row, rows: _ceiling(_p50(row), 15)),
        Check("p99 ≤ 50 ms", lambda row, rows: _ceiling(_p99(row), 50)),
    ),
    "count": (Check("p50 ≤ 1.5 × SQL p50", lambda row, rows: _ceiling(_p50(row), _times(_sql_p50(row), 1.5))),),
    "members": (Check("p50 ≤ 15 ms", lambda row, rows: _ceiling(_p50(row), 15)),),
    "import": (Check("≥ 10,000 rows/s", lambda row, rows: _minimum(row.rate, 10_000)),),
    "export": (
        Check("≤ 2.5 × psql \\copy", lambda row, rows: _ceiling(row.seconds, _times(row.reference_seconds, 2.5))),
        Check("RSS ≤ 100 MiB", lambda row, rows: _ceiling(row.peak_rss_bytes, 100 * MIB)),
    ),
    "worker": (Check("RSS ≤ 150 MiB", lambda row, rows: _ceiling(row.rss_bytes, 150 * MIB)),),
}


def _half(value):
    return _times(value, 0.5)


def _times(value, factor):
    return value * factor if value is not None else None


def evaluate(floor: str | None, row, rows: dict) -> tuple[str, list[float | None]]:
    """The floor's text and the row's ratio to each of its checks."""
    if floor is None:
        return "", []
    checks = FLOORS[floor]
    return " · ".join(check.text for check in checks), [check.ratio(row, rows) for check in checks]
