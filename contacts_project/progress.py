"""Progress for long commands: a tqdm bar on a terminal, plain periodic lines elsewhere.

Logs and CI capture stderr without a terminal, where a redrawn bar is noise;
there a line every few seconds tells the same (count, rate, ETA when the total
is known).
"""

import sys
import time

from tqdm import tqdm


class Progress:
    def __init__(self, *, total: int | None, unit: str, stream=None, every_seconds: float = 2.0):
        self.total = total
        self.unit = unit
        self.stream = stream or sys.stderr
        self.every_seconds = every_seconds
        self.done = 0
        self.bar = None
        self.started = self.last_line = time.monotonic()

    def __enter__(self):
        if hasattr(self.stream, "isatty") and self.stream.isatty():
            self.bar = tqdm(total=self.total, unit=f" {self.unit}", unit_scale=True, file=self.stream, smoothing=0.1)
        return self

    def __exit__(self, *exc_info):
        if self.bar is not None:
            self.bar.close()
        return False

    def advance(self, count: int) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
            return
        now = time.monotonic()
        if now - self.last_line >= self.every_seconds:
            self.last_line = now
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.done:,} {self.unit}, {rate:,.0f} {self.unit}/s"
        if self.total:
            remaining = max(self.total - self.done, 0) / rate if rate else 0
            text = f"{self.done:,}/{self.total:,} {self.unit} ({100 * self.done / self.total:.0f}%), " + (
                f"{rate:,.0f} {self.unit}/s, ETA {remaining:.0f}s"
            )
        return text
