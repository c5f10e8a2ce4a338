"""How the cockpit runs Python's garbage collector while flows pour in.

Automatic full collections walk every live object: with a million flow records that is a
100+ ms freeze every few seconds at high rates. Records are freed by reference counting (no
cycles), so the cockpit runs full collections itself, once a minute, and freezes the objects
that exist once it is up out of them. The ingest benchmark sets the collector the same way.
"""

from __future__ import annotations

import gc

FULL_GC_INTERVAL_S = 60.0  # seconds between the cockpit's own full collections
_NO_AUTOMATIC_FULL = 1_000_000  # young collections before an automatic full one: never, in practice


def defer_full_collections() -> tuple[int, int, int]:
    """Collect once, freeze what lives now, and stop automatic full collections; returns the
    thresholds before, for `restore_collections`. The caller runs `gc.collect()` every
    FULL_GC_INTERVAL_S."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(thresholds[0], thresholds[1], _NO_AUTOMATIC_FULL)
    return thresholds


def restore_collections(thresholds: tuple[int, int, int]) -> None:
    gc.set_threshold(*thresholds)
    gc.unfreeze()
