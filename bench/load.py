"""HTTP load from a separate process: wrk, or a Python load generator when wrk is missing.

Both take the same targets file (one request per line: ``METHOD<TAB>PATH[<TAB>BODY]``),
keep ``connections`` requests in flight for ``duration`` seconds (or until
``max_requests`` answers per thread) and return a ``LoadResult``.
"""

import http.client
import json
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.stats import percentile

LUA_SCRIPT = Path(__file__).with_name("wrk_report.lua")
INSTALL_HINT = (
    "wrk is not installed: measuring with the Python load generator instead (it costs CPU the server "
    "then lacks, so rates are lower). Install wrk for the real numbers: apt-get install -y wrk"
)


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # answers >= 400, socket errors and timeouts

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def write_targets(path: Path, lines: list[tuple[str, str, str | None]]) -> Path:
    """``(method, path, body or None)`` lines in the targets format."""
    with path.open("w", encoding="utf-8") as file:
        for method, target, body in lines:
            if "\t" in target or "\n" in target or (body and ("\t" in body or "\n" in body)):
                raise ValueError(f"A target may not contain a tab or a newline: {target!r}")
            file.write(f"{method}\t{target}\t{body}\n" if body else f"{method}\t{target}\n")
    return path


GENERATORS = ("auto", "wrk", "python")


def wrk_path() -> str | None:
    return shutil.which("wrk")


def use_wrk(generator: str) -> bool:
    """Whether ``generator`` (one of ``GENERATORS``) means wrk here; "wrk" without wrk installed is an error."""
    if generator == "wrk" and wrk_path() is None:
        raise RuntimeError(INSTALL_HINT.split(": ", 1)[1])
    return generator == "wrk" or (generator == "auto" and wrk_path() is not None)


def describe(generator: str) -> str:
    if not use_wrk(generator):
        return "Python load generator (bench/load.py)"
    result = subprocess.run([wrk_path(), "--version"], capture_output=True, text=True, check=False)
    return (result.stdout or result.stderr).split(" Copyright")[0].strip()


def run_load(
    *,
    base_url: str,
    targets: Path,
    api_key: str,
    connections: int,
    duration: float,
    max_requests: int = 0,
    threads: int = 1,
    generator: str = "auto",
) -> LoadResult:
    if use_wrk(generator):
        return _run_wrk(
            base_url=base_url,
            targets=targets,
            api_key=api_key,
            connections=connections,
            duration=duration,
            max_requests=max_requests,
            threads=threads,
        )
    return _run_python(
        base_url=base_url,
        targets=targets,
        api_key=api_key,
        connections=connections,
        duration=duration,
        max_requests=max_requests,
    )


def _run_wrk(*, base_url, targets, api_key, connections, duration, max_requests, threads) -> LoadResult:
    threads = max(1, min(threads, connections))
    command = [
        wrk_path(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        # wrk's default 2 s would drop slow answers (a segment COUNT) from the percentiles.
        "--timeout",
        "60s",
        "-s",
        str(LUA_SCRIPT),
        base_url,
        "--",
        str(targets),
        api_key,
        str(max_requests),
        str(threads),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    line = next((line for line in result.stdout.splitlines() if line.startswith("BENCH_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = sum(data[name] for name in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
    )


def _read_targets(path: Path) -> list[tuple[str, str, str | None]]:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        method, target, *body = line.split("\t", 2)
        lines.append((method, target, body[0] if body else None))
    return lines


def _run_python(*, base_url, targets, api_key, connections, duration, max_requests) -> LoadResult:
    """One thread per connection, each cycling through its share of the targets (like the Lua script)."""
    host, port = base_url.removeprefix("http://").rstrip("/").split(":")
    lines = _read_targets(targets)
    deadline = time.perf_counter() + duration
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections

    def work(index: int) -> None:
        share = lines[index::connections] or lines
        client = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = {"Authorization": f"Bearer {api_key}", "X-Forwarded-Proto": "https"}
        position = 0
        while time.perf_counter() < deadline and not (max_requests and len(latencies[index]) >= max_requests):
            method, target, body = share[position % len(share)]
            position += 1
            request_headers = {**headers, "Content-Type": "application/json"} if body else headers
            started = time.perf_counter()
            try:
                client.request(method, target, body=body.encode() if body else None, headers=request_headers)
                response = client.getresponse()
                response.read()
                if response.status >= 400:
                    errors[index] += 1
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                client.close()
            latencies[index].append(time.perf_counter() - started)

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(index,)) for index in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    samples = sorted(sample for thread_samples in latencies for sample in thread_samples)
    return LoadResult(
        requests=len(samples),
        seconds=elapsed,
        p50_ms=percentile(samples, 50) * 1000,
        p99_ms=percentile(samples, 99) * 1000,
        errors=sum(errors),
    )
