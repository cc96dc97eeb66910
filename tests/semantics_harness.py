"""A tiny in-memory shell over the pure core, for tests: a virtual clock, a timer heap, subscriptions.

Work is completed by the test (``done``/``fail``) or automatically by ``auto`` handlers.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.model.definition import ProcessDefinition
from engine.semantics import InstanceState, Semantics
from engine.semantics import effects as fx
from engine.semantics import events as ev

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday


def _tokens(state: InstanceState) -> dict[str, Any]:
    return state.to_dict()["tokens"]


def _check_touched(before: dict[str, Any], state: InstanceState) -> None:
    """Every token a step added or changed is in ``state.touched``: the engine writes only those (and deletes
    the tokens that are gone)."""
    after = _tokens(state)
    changed = {t for t, data in after.items() if before.get(t) != data}
    missed = changed - state.touched
    assert not missed, f"tokens changed but not marked touched: {sorted(missed)}"
    state.touched.clear()


class Harness:
    def __init__(self, definition: ProcessDefinition, now: datetime = T0, **kwargs: Any) -> None:
        self.sem = Semantics(definition, **kwargs)
        self.now = now
        self.state: InstanceState | None = None
        self.effects: list[fx.Effect] = []
        self.work: dict[str, fx.StartWork] = {}  # token id -> open work
        self.timers: list[tuple[datetime, int, str]] = []
        self.cancelled_timers: set[str] = set()
        self.subscriptions: dict[str, fx.Subscribe] = {}
        self.sent: list[fx.SendMessage] = []
        self.broadcasts: list[fx.BroadcastSignal] = []
        self.incidents: list[fx.Incident] = []
        self.auto: dict[str, Callable[[fx.StartWork], dict[str, Any]]] = {}
        self._n = 0

    def start(self, **variables: Any) -> Harness:
        self.state, effects = self.sem.start(variables, self.now)
        _check_touched({}, self.state)
        self._apply(effects)
        return self

    def send(self, event: ev.Event) -> list[fx.Effect]:
        assert self.state is not None
        before = _tokens(self.state)
        effects = self.sem.step(self.state, event, self.now)
        _check_touched(before, self.state)
        self._apply(effects)
        return effects

    def _apply(self, effects: list[fx.Effect]) -> None:
        self.effects.extend(effects)
        auto: list[fx.StartWork] = []
        for e in effects:
            if isinstance(e, fx.StartWork):
                self.work[e.token_id] = e
                if e.node_id in self.auto or e.kind == "task":
                    auto.append(e)
            elif isinstance(e, fx.CancelWork):
                self.work.pop(e.token_id, None)
            elif isinstance(e, fx.ScheduleTimer):
                self._n += 1
                heapq.heappush(self.timers, (e.due, self._n, e.timer_id))
            elif isinstance(e, fx.CancelTimer):
                self.cancelled_timers.add(e.timer_id)
            elif isinstance(e, fx.Subscribe):
                self.subscriptions[e.subscription_id] = e
            elif isinstance(e, fx.Unsubscribe):
                self.subscriptions.pop(e.subscription_id, None)
            elif isinstance(e, fx.SendMessage):
                self.sent.append(e)
            elif isinstance(e, fx.BroadcastSignal):
                self.broadcasts.append(e)
            elif isinstance(e, fx.Incident):
                self.incidents.append(e)
        for e in auto:
            if self.work.get(e.token_id) is e:
                outputs = self.auto[e.node_id](e) if e.node_id in self.auto else {}
                self.done_token(e.token_id, **outputs)

    # --- driving ---------------------------------------------------------------------------

    def open_work(self, node_id: str | None = None) -> list[fx.StartWork]:
        return [w for w in self.work.values() if node_id is None or w.node_id == node_id]

    def done(self, node_id: str, **outputs: Any) -> list[fx.Effect]:
        (work,) = self.open_work(node_id)
        return self.done_token(work.token_id, **outputs)

    def done_token(self, token_id: str, **outputs: Any) -> list[fx.Effect]:
        self.work.pop(token_id, None)
        return self.send(ev.WorkDone(token_id, outputs))

    def fail(self, node_id: str, error: str = "boom", code: str | None = None, business: bool = False) -> None:
        (work,) = self.open_work(node_id)
        self.work.pop(work.token_id, None)
        self.send(ev.WorkFailed(work.token_id, error, code, business))

    def signal(self, name: str, **payload: Any) -> int:
        """Broadcast a signal to every subscription waiting for it now; how many received it."""
        waiting = [sid for sid, sub in self.subscriptions.items() if sub.kind == "signal" and sub.message == name]
        for sid in waiting:
            if self.subscriptions.pop(sid, None) is not None:
                self.send(ev.SignalReceived(sid, payload))
        return len(waiting)

    def message(self, name: str, correlation: Any = None, **payload: Any) -> bool:
        for sid, sub in list(self.subscriptions.items()):
            if sub.kind == "message" and sub.message == name and correlation in (None, sub.correlation):
                del self.subscriptions[sid]
                self.send(ev.MessageReceived(sid, payload))
                return True
        return False

    def advance(self, delta: timedelta) -> None:
        """Fire every timer due within ``delta``, in due order, moving the clock to each."""
        until = self.now + delta
        while self.timers and self.timers[0][0] <= until:
            due, _, timer_id = heapq.heappop(self.timers)
            if timer_id in self.cancelled_timers:
                continue
            self.now = max(self.now, due)
            self.send(ev.TimerFired(timer_id))
        self.now = until

    # --- reading -----------------------------------------------------------------------------

    @property
    def status(self) -> str:
        assert self.state is not None
        return self.state.status

    @property
    def variables(self) -> dict[str, Any]:
        assert self.state is not None
        return self.state.variables

    def entered(self) -> list[str]:
        return [e.node_id for e in self.effects if isinstance(e, fx.Entered)]

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.effects if isinstance(e, kind)]
