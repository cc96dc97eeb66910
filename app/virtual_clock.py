"""The demo's virtual clock: :mod:`engine.runtime.stored_clock` (the engine's external workers read it too,
``waooaw worker --clock demo``); kept importable here for the app."""

from __future__ import annotations

from engine.runtime.stored_clock import CLOCK_TABLE, FollowedClock, StoredClock

__all__ = ["CLOCK_TABLE", "FollowedClock", "StoredClock"]
