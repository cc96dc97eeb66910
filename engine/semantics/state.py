"""The state of one instance: plain, small, serialisable data.

The engine stores it in one row per instance (and mirrors tokens into a table for queries); the
simulator keeps thousands in memory. Nothing here knows about databases or clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Token statuses: where a token waits.
WORK = "work"  # an activity's work is in progress (agent call, human task, task)
TIMER = "timer"  # an intermediate timer catch
MESSAGE = "message"  # an intermediate message catch
RACE = "race"  # an event-based gateway: first event wins
JOIN = "join"  # waiting at a parallel or inclusive join
SCOPE = "scope"  # a sub-process whose inner tokens are running
RETRY = "retry"  # waiting for a retry's backoff timer
INCIDENT = "incident"  # failed for good; waits for RetryIncident
COMPENSATING = "compensating"  # a compensation throw running handlers one by one
CONDITION = "condition"  # an intermediate conditional catch: waits until its condition holds
MULTI = "multi"  # a multi-instance or loop activity (its body) whose instances are running
SIGNAL = "signal"  # an intermediate signal catch
LISTEN = "listen"  # an event sub-process's start event, armed while its enclosing scope runs


@dataclass(slots=True)
class Token:
    id: str
    node: str
    status: str
    parent: str | None = None  # the sub-process scope token this token runs in
    via: str | None = None  # the flow it arrived by (joins need it)
    work_id: str | None = None
    attempt: int = 1
    waits: dict[str, str] = field(default_factory=dict)  # timer/subscription id -> boundary or target node id
    fired: dict[str, int] = field(default_factory=dict)  # cycle timer id -> times fired
    pending: list[int] = field(default_factory=list)  # compensation entries still to run (indexes)
    error: str | None = None
    locals: dict[str, Any] | None = None  # variables of its own: a loop instance's loopCounter and element
    loop: dict[str, Any] | None = None  # a multi-instance or loop body's counters (see Semantics._loop_*)


@dataclass(slots=True)
class CompensationEntry:
    """A completed activity that has a compensation handler, remembered for a later undo."""

    node: str
    handler: str
    scope: tuple[str, ...]  # node ids of the enclosing sub-processes, outermost first
    inputs: dict[str, Any]
    done: bool = False
    scope_tokens: tuple[str, ...] = ()  # activations (work ids) of its enclosing sub-processes, innermost first


@dataclass(slots=True)
class InstanceState:
    variables: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    compensable: list[CompensationEntry] = field(default_factory=list)
    status: str = "running"  # running | completed | terminated | failed | cancelled
    seq: int = 0  # the source of deterministic ids
    steps: int = 0  # nodes passed, for statistics
    caller: dict[str, Any] | None = None  # a called process: {"instance", "token", "work"} of its call activity
    # Ids of the tokens the core added or changed since the shell last cleared it (not stored): the engine
    # writes only these rows and deletes the tokens that are gone (engine.runtime.writes), so a step costs the
    # same at 10 or 10,000 tokens. tests/semantics_harness.py checks after every step that none is missed.
    touched: set[str] = field(default_factory=set, compare=False, repr=False)

    def next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq}"

    @property
    def active_nodes(self) -> list[str]:
        return [t.node for t in self.tokens.values()]

    @property
    def finished(self) -> bool:
        return self.status != "running"

    def to_dict(self, variables: bool = True, tokens: bool = True) -> dict[str, Any]:
        """Plain data for JSON (written by hand: ``dataclasses.asdict`` deep-copies and was a third of a
        step's cost). Containers are copied; variable values are shared, so serialise, don't mutate.
        ``variables=False`` and ``tokens=False`` leave them out: the engine stores each variable and each token
        once, in rows of their own (``wf_variables``, ``wf_tokens``), not again in every step's copy of the state."""
        out = {"variables": dict(self.variables)} if variables else {}
        if tokens:
            out["tokens"] = {tid: {"id": t.id, "node": t.node, "status": t.status, "parent": t.parent,
                                   **token_data(t)} for tid, t in self.tokens.items()}
        return out | {
            "compensable": [{"node": c.node, "handler": c.handler, "scope": list(c.scope), "inputs": dict(c.inputs),
                             "done": c.done, "scope_tokens": list(c.scope_tokens)} for c in self.compensable],
            "status": self.status, "seq": self.seq, "steps": self.steps,
            **({"caller": dict(self.caller)} if self.caller else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstanceState:
        return cls(
            variables=dict(data.get("variables", {})),
            tokens={tid: Token(**tok) for tid, tok in data.get("tokens", {}).items()},
            compensable=[
                CompensationEntry(**{**c, "scope": tuple(c.get("scope", ())),
                                     "scope_tokens": tuple(c.get("scope_tokens", ()))})
                for c in data.get("compensable", [])
            ],
            status=data.get("status", "running"),
            seq=int(data.get("seq", 0)),
            steps=int(data.get("steps", 0)),
            caller=data.get("caller"),
        )


def token_data(t: Token) -> dict[str, Any]:
    """A token's fields other than id, node, status and parent, as plain data (containers copied)."""
    data = {"via": t.via, "work_id": t.work_id, "attempt": t.attempt, "waits": dict(t.waits),
            "fired": dict(t.fired), "pending": list(t.pending), "error": t.error}
    if t.locals is not None:
        data["locals"] = dict(t.locals)
    if t.loop is not None:
        data["loop"] = {k: list(v) if isinstance(v, list) else v for k, v in t.loop.items()}
    return data
