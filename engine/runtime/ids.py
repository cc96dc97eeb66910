"""Instance ids that sort by creation time (the layout of UUIDv7, RFC 9562: 48 bits of Unix milliseconds,
then 74 random bits; 32 hex digits like ``uuid4().hex``).

Why: every table keyed or indexed by ``instance_id`` gets its new rows next to the newest ones, so a
step writes to the few B-tree pages at the right edge, which stay in cache; random uuid4 keys land on a
random leaf page of every such index, each read and written back (a whole page per index per commit),
so the cost of a step would grow with the database. Unique across processes as uuid4 is (74 random
bits per millisecond).
"""

from __future__ import annotations

import os
import time


def new_instance_id() -> str:
    """A 32-hex-digit id: creation time first (milliseconds, UTC), then randomness (UUIDv7 layout)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62 | \
        (rand & 0x3FFF_FFFF_FFFF_FFFF)
    return f"{value:032x}"


def short_id(instance_id: str) -> str:
    """The 8 characters a screen shows for an instance: the end of the id, which is random. The start is the
    creation time, the same for instances started within a few seconds of each other."""
    return instance_id[-8:]


__all__ = ["new_instance_id", "short_id"]
