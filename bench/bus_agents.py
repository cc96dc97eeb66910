"""The agent of the bus benchmark's external workers: WowVision's check taking 20 ms (a network call's wait)."""

from __future__ import annotations

import time
from typing import Any


def validate_20ms(inputs: dict[str, Any], context: Any = None) -> dict[str, Any]:
    time.sleep(0.02)
    return {"vision_approved": int(inputs.get("pr_number") or 0) % 2 == 0}
