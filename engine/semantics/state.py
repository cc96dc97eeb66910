"""The state of one instance: plain, small, serialisable data.

The engine stores it in one row per instance (and mirrors tokens into a table for queries); the
simulator keeps thousands in memory. Nothing here knows about databases or clocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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


@dataclass(slots=True, init=False)
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

    def __init__(self, id: str, node: str, status: str, parent: str | None = None, via: str | None = None,
                 work_id: str | None = None, attempt: int = 1, waits: dict[str, str] | None = None,
                 fired: dict[str, int] | None = None, pending: list[int] | None = None, error: str | None = None,
                 locals: dict[str, Any] | None = None, loop: dict[str, Any] | None = None) -> None:
        # Written by hand (issue 19): the generated one calls dict() and list() for the empty containers, a
        # quarter dearer than these literals; a token is made per case at least.
        self.id = id
        self.node = node
        self.status = status
        self.parent = parent
        self.via = via
        self.work_id = work_id
        self.attempt = attempt
        self.waits = {} if waits is None else waits
        self.fired = {} if fired is None else fired
        self.pending = [] if pending is None else pending
        self.error = error
        self.locals = locals
        self.loop = loop


class Tokens(dict[str, Token]):
    """An instance's tokens by id (a dict, in creation order), with an index of the tokens of each scope: the
    tokens whose ``parent`` is a given token id, kept as tokens are added and removed (a token's parent never
    changes). A multi-instance sub-process over 10,000 items has 10,000 scope tokens under its body; asking
    whether one item's scope has tokens left is then a lookup, not a scan of all tokens. The process level
    (``parent`` None) is not indexed: most instances have only tokens there, and the core asks for them only
    when an event sub-process interrupts the process (a scan then, as it cancels them all; issue 19). So a
    token whose ``parent`` is None may also be added and removed with dict's own ``__setitem__`` and ``pop``
    (the core's hot path does: a method of this class is a Python call; a new id only, for ``__setitem__``).
    Reads (``get``, ``[]``, iteration) are plain dict reads."""

    __slots__ = ("_scopes",)

    def __init__(self, tokens: Iterable[tuple[str, Token]] | dict[str, Token] = ()) -> None:
        self._scopes: dict[str | None, dict[str, Token]] = {}
        if tokens:
            self.update(tokens)

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and copy: rebuilt through __init__ (the index with it)
        return (Tokens, (list(self.items()),))

    def __setitem__(self, token_id: str, token: Token) -> None:
        old = dict.get(self, token_id)
        if old is not None and old is not token:
            self._unlink(token_id, old)
        dict.__setitem__(self, token_id, token)
        parent = token.parent
        if parent is None:
            return
        scope = self._scopes.get(parent)
        if scope is None:
            self._scopes[parent] = {token_id: token}
        else:
            scope[token_id] = token

    def __delitem__(self, token_id: str) -> None:
        self._unlink(token_id, dict.pop(self, token_id))

    def pop(self, token_id: str, *default: Any) -> Any:  # type: ignore[override]
        token = dict.pop(self, token_id, _MISSING)
        if token is _MISSING:
            if default:
                return default[0]
            raise KeyError(token_id)
        if token.parent is not None:
            self._unlink(token_id, token)
        return token

    def popitem(self) -> tuple[str, Token]:
        token_id, token = dict.popitem(self)
        self._unlink(token_id, token)
        return token_id, token

    def setdefault(self, token_id: str, token: Token) -> Token:  # type: ignore[override]
        if token_id not in self:
            self[token_id] = token
        return dict.__getitem__(self, token_id)

    def update(self, *others: Any, **more: Token) -> None:  # type: ignore[override]
        for other in others:
            for token_id, token in (other.items() if isinstance(other, dict) else other):
                self[token_id] = token
        for token_id, token in more.items():
            self[token_id] = token

    def clear(self) -> None:
        dict.clear(self)
        self._scopes.clear()

    def __ior__(self, other: Any) -> Tokens:  # type: ignore[override]
        self.update(other)
        return self

    def in_scope(self, parent: str | None) -> list[Token]:
        """The tokens whose ``parent`` is ``parent`` (in creation order; a copy: safe to remove while looping)."""
        if parent is None:
            return [t for t in self.values() if t.parent is None]
        scope = self._scopes.get(parent)
        return list(scope.values()) if scope else []

    def any_in_scope(self, parent: str | None) -> bool:
        """Whether a token's ``parent`` is ``parent``."""
        if parent is None:
            return any(t.parent is None for t in self.values())
        return bool(self._scopes.get(parent))

    def scope_iter(self, parent: str | None) -> Iterator[Token]:
        """The tokens whose ``parent`` is ``parent``, without a copy (do not add or remove tokens meanwhile)."""
        if parent is None:
            return (t for t in self.values() if t.parent is None)
        scope = self._scopes.get(parent)
        return iter(scope.values()) if scope else iter(())

    def _unlink(self, token_id: str, token: Token) -> None:
        if token.parent is None:
            return
        scope = self._scopes.get(token.parent)
        if scope is not None and scope.pop(token_id, None) is not None and not scope:
            del self._scopes[token.parent]


_MISSING = object()


@dataclass(slots=True)
class CompensationEntry:
    """A completed activity that has a compensation handler, remembered for a later undo."""

    node: str
    handler: str
    scope: tuple[str, ...]  # node ids of the enclosing sub-processes, outermost first
    inputs: dict[str, Any]
    done: bool = False
    scope_tokens: tuple[str, ...] = ()  # activations (work ids) of its enclosing sub-processes, innermost first


_new_dict = dict.__new__


@dataclass(slots=True, init=False)
class InstanceState:
    variables: dict[str, Any]
    tokens: Tokens
    compensable: list[CompensationEntry]
    status: str  # running | completed | terminated | failed | cancelled
    seq: int  # the source of deterministic ids
    steps: int  # nodes passed, for statistics
    caller: dict[str, Any] | None  # a called process: {"instance", "token", "work"} of its call activity
    # Ids of the tokens the core added or changed since the shell last cleared it (not stored): the engine
    # writes only these rows and deletes the tokens that are gone (engine.runtime.writes), so a step costs the
    # same at 10 or 10,000 tokens. tests/semantics_harness.py checks after every step that none is missed.
    touched: set[str] = field(compare=False, repr=False)

    def __init__(self, variables: dict[str, Any] | None = None, tokens: Tokens | dict[str, Token] | None = None,
                 compensable: list[CompensationEntry] | None = None, status: str = "running", seq: int = 0,
                 steps: int = 0, caller: dict[str, Any] | None = None, touched: set[str] | None = None) -> None:
        # Written by hand (the simulator makes one per case, issue 19): no __post_init__ call, and no Tokens.__init__
        # call for the usual empty start (``dict.__new__`` makes the dict, its index is set here).
        self.variables = {} if variables is None else variables
        if tokens is None:
            tokens = _new_dict(Tokens)
            tokens._scopes = {}
        elif not isinstance(tokens, Tokens):  # a plain dict: indexed from here on
            tokens = Tokens(tokens)
        self.tokens = tokens
        self.compensable = [] if compensable is None else compensable
        self.status = status
        self.seq = seq
        self.steps = steps
        self.caller = caller
        self.touched = set() if touched is None else touched

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
