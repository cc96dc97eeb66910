"""The agent of the crash test: records every call, and its side effect once per idempotency key.

Loaded by the worker processes with ``--agents crash_agent`` (tests/ is on PYTHONPATH there).
"""

from __future__ import annotations

import os
import random
import time
from functools import cache
from typing import Any

from sqlalchemy import Engine, create_engine, text

from engine import register
from engine.runtime.db import normalise_url


@cache
def _db() -> Engine:
    engine = create_engine(normalise_url(os.environ["CRASH_DB"]), connect_args={"timeout": 30}
                           if os.environ["CRASH_DB"].startswith("sqlite") else {})
    return engine


def side_effect(inputs: dict[str, Any], context: Any) -> dict[str, Any]:
    with open(os.environ["CRASH_LOG"], "a") as log:  # every call, duplicates included
        log.write(f"{context.idempotency_key}\n")
    time.sleep(random.uniform(0.001, 0.006))
    with _db().begin() as conn:  # the external effect, keyed: a re-run changes nothing
        conn.execute(text("INSERT INTO crash_effects (key, instance_id, node_id) VALUES (:k, :i, :n) "
                          "ON CONFLICT (key) DO NOTHING"),
                     {"k": context.idempotency_key, "i": context.instance_id, "n": context.node_id})
    return {f"{context.node_id}_done": True}


register("crash.side_effect", side_effect)
