"""Process tree and memory from Linux's /proc (no extra dependency)."""

from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Memory:
    pid: int
    rss_bytes: int  # resident now
    peak_bytes: int  # VmHWM: the most it ever held resident


def children(pid: int) -> list[int]:
    found = []
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # "pid (comm) state ppid …"; comm may hold spaces and parentheses.
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def descendants(pid: int) -> list[int]:
    result, pending = [], [pid]
    while pending:
        for child in children(pending.pop()):
            result.append(child)
            pending.append(child)
    return result


def memory(pid: int) -> Memory | None:
    """Current and peak resident set size (``/proc/<pid>/status`` counts in kB)."""
    try:
        lines = (PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    if "VmRSS" not in fields:  # a zombie
        return None
    return Memory(
        pid=pid, rss_bytes=int(fields["VmRSS"].split()[0]) * 1024, peak_bytes=int(fields["VmHWM"].split()[0]) * 1024
    )
