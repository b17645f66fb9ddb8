"""RFC 3339 timestamps from clients (query parameters, segment rules), as the database can hold them.

An offset is required (a timestamp without one names no instant). The
result is converted to UTC here, not by PostgreSQL: RFC 3339 allows offsets up
to ±23:59 but PostgreSQL refuses any beyond ±15:59 (an error, so a 500), and a
time near year 1 or 9999 can leave Python's range once shifted to UTC.
"""

import datetime
import re

from django.utils.dateparse import parse_datetime

# ASCII: \d alone would take any script's digits (Arabic-Indic ones…), which int() reads.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)


def parse_rfc3339(value) -> datetime.datetime | None:
    """The UTC datetime ``value`` names, or None if it is not such a timestamp (or is out of range)."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return None
    try:
        parsed = parse_datetime(value.upper().replace("Z", "+00:00"))
        return parsed.astimezone(datetime.UTC) if parsed is not None else None
    except (ValueError, OverflowError):
        return None
