"""Percentiles of latency samples."""


def percentile(sorted_samples: list[float], pct: float) -> float:
    """The ``pct``th percentile of already sorted samples, linearly interpolated (0.0 when empty)."""
    if not sorted_samples:
        return 0.0
    rank = (len(sorted_samples) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(sorted_samples) - 1)
    return sorted_samples[low] + (sorted_samples[high] - sorted_samples[low]) * (rank - low)
