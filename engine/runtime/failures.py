"""A step that cannot be applied ends as an incident, not as a retry forever.

The worker applies a batch of events in one transaction; when it fails, each event is applied alone (so one
bad step holds up no other). An event that still fails alone is either:

- **transient**: the database went away, a lock timed out, a deadlock victim (``OperationalError``,
  ``InterfaceError``, a pool timeout, an invalidated connection). Nothing is written; its job runs again when
  its lease ends, as after a crash.
- **deterministic**: anything else (a duration beyond the calendar, a value the database refuses, a bug in a
  rule). Running it again would fail again, so it becomes an **incident** on the token the event concerned
  (``StepFailed``), with the error and the traceback, and the job is removed in the same transaction. The
  worker goes on; ``Engine.retry(incident)`` tries the token again once the cause is fixed.

Jobs that run alone (a message delivery, an SLA handler, a timer start) follow the same rule: a transient failure
leaves the job for its next lease; any other ends as an incident that holds the job itself (``wf_incidents.job``;
on the sending instance for a message, without an instance for a timer start). ``retry`` puts the job back,
``Engine.cancel_incident`` drops it.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from engine.semantics import events as ev


def is_transient(error: BaseException) -> bool:
    """True for failures that say nothing about the step itself (the database, the connection, a lock)."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError
                  | sa_exc.DisconnectionError | ConnectionError | TimeoutError):
        return True
    # The message bus (redis-py's errors are not the builtins): checked by name, redis is imported only with a bus.
    return type(error).__module__.startswith("redis") and type(error).__name__ in (
        "ConnectionError", "TimeoutError", "BusyLoadingError")


def ref_of(event: ev.Event) -> str | None:
    """The token, timer or subscription id an event concerns (None for instance-wide events)."""
    if isinstance(event, ev.WorkDone | ev.WorkFailed | ev.WorkEscalated | ev.RetryIncident):
        return event.token_id
    if isinstance(event, ev.TimerFired):
        return event.timer_id
    if isinstance(event, ev.MessageReceived | ev.SignalReceived):
        return event.subscription_id
    return None


def describe(error: BaseException, event: ev.Event) -> str:
    """One line for the incident: what failed, while doing what."""
    text = " ".join(str(error).split()) or type(error).__name__
    if len(text) > 500:
        text = text[:500] + "..."
    return f"step failed applying {type(event).__name__}: {type(error).__name__}: {text}"
