"""Python's cyclic garbage collector during batch work.

A batch stage holds millions of container objects at once (lists of emails per record, tuples of
standardized fields, the frames' object columns). Every full collection walks all of them, and the
collector starts one each time the objects created since the last exceed a quarter of those that
survived it: at 100,000 records that is about a third of standardization's CPU, and the cost per
collection grows with the records held. What a batch stage creates is freed by reference counting
when the stage drops it; the few reference cycles pandas leaves wait for the next collection after
the stage (tens of MB at 1,000,000 records, measured as peak memory in bench_identity.py).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """The collector off inside the block, as it was after (nesting and an already disabled collector
    are left alone). The collector is per process: threads running beside the block pause too."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
