"""The cyclic garbage collector paused while a scan builds objects by the hundred thousand."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No collection inside: `renew` and `status` over 100,000 lineages make hundreds of
    thousands of small lists and strings that hold no cycle, and the collector would walk
    them again and again (a quarter of such a run). Resumed as it was on the way out."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
