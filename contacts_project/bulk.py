"""Process settings for bulk commands (import, export, seeding)."""

import gc
from contextlib import contextmanager


@contextmanager
def fewer_gc_passes(threshold: int = 50_000):
    """Let the cyclic garbage collector run rarely while a bulk job runs.

    A bulk job allocates millions of short-lived objects while it holds a
    batch of live ones; with the default threshold (700 allocations) the
    collector ran thousands of times per batch and re-walked every live
    object each time: a third of an import's main-process CPU, measured.
    ``gc.freeze()`` also moves what was loaded at start-up (Django, the
    URL conf, phonenumbers' metadata) out of the collector's sight, and
    worker processes forked inside inherit both settings. Reference
    counting still frees everything that is not in a cycle at once.
    """
    saved = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(threshold, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()
