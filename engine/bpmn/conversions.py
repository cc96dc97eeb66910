"""Condition and timer texts as other engines write them, turned into what our model reads.

Our expressions accept ``${...}`` wrappers and ``&&``/``||`` already (``engine.model.expressions``).
Here only the small, unambiguous rewrites are added: JUEL's ``!x`` (Camunda), FEEL's leading ``=`` and
single ``=`` equality (Zeebe), Python-quoted durations (SpiffWorkflow), Quartz cron (Camunda 7, jBPM) and
jBPM's own durations (``2s``, ``500ms``, ``1d 2h``: ``#d #h #m #s #ms`` in that order, as jBPM's
``TimeUtils.parseTimeString`` reads them), turned into ISO-8601 (``PT2S``, ``PT0.5S``, ``P1DT2H``); the last
two live in ``engine.model.timers``, which reads a timer expression's value (``${cronExpression}``) the same way
when the timer is armed.
A condition these rewrites do not turn into ours but that is FEEL's common subset (``engine.model.feel``: names
with spaces, ``some``/``every``, ranges) is kept as written: our expressions read FEEL as a second language.
Anything else that does not parse is reported by the caller; nothing is guessed.
"""

from __future__ import annotations

import re

from engine.errors import ExpressionError, TimerSpecError
from engine.model import expressions
from engine.model.timers import Timer, is_expression, jbpm_duration, quartz_cron

_JUEL_NOT = re.compile(r"!(?!=)")
_FEEL_EQ = re.compile(r"(?<![<>!=])=(?!=)")
_DATA_OBJECT = re.compile(r"(?:bpmn:)?getDataObject\(\s*['\"](?P<name>[A-Za-z_]\w*)['\"]\s*\)")


def condition(text: str) -> tuple[str | None, str | None, str | None]:
    """(condition for the model, note about a rewrite, reason it cannot be used).

    The original text is kept when it parses as is, so an exported file shows what was imported.
    """
    raw = text.strip()
    if not raw:
        return None, None, None
    reason = expressions.check(raw)
    if reason is None and not expressions.is_feel(raw):
        return raw, None, None
    candidates: list[tuple[str, str]] = []
    if raw.startswith("="):  # FEEL (Camunda 8): '= a = "x"'
        body = raw[1:].strip()
        candidates.append((body, "FEEL '=' prefix dropped"))
        candidates.append((_FEEL_EQ.sub("==", body), "FEEL equality '=' read as '=='"))
    wrapped = re.match(r"^\s*[$#]\{(?P<body>.*)\}\s*$", raw, re.DOTALL)
    inner = wrapped.group("body") if wrapped else raw
    if "!" in inner:
        rewritten = _JUEL_NOT.sub(" not ", inner).strip()
        candidates.append((rewritten, "JUEL '!' read as 'not'"))
    if "getDataObject(" in raw:  # XPath with BPMN 2.0's own function (§10.4.4 Table 10.20): a data object is a variable
        xpath = _DATA_OBJECT.sub(lambda m: m.group("name"), raw)
        xpath = _FEEL_EQ.sub("==", xpath)  # XPath's '=' is equality
        candidates.append((xpath, "XPath bpmn:getDataObject('x') read as the variable x, '=' as '=='"))
    for candidate, note in candidates:
        if expressions.check(candidate) is None and not expressions.is_feel(candidate):
            return candidate, f"condition {raw!r} read as {candidate!r} ({note})", None
    if reason is None:  # FEEL beyond those rewrites: kept as written, read by engine.model.feel
        return raw, f"condition {raw!r} read as FEEL", None
    return None, None, reason


def timer_text(text: str) -> tuple[str, str | None]:
    """Normalise a timer value: strip quotes (SpiffWorkflow writes Python strings) and turn Quartz cron
    (seconds first, '?' for 'any') into the 5/6-field cron croniter reads. Returns (text, note)."""
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1].strip(), f"quoted timer value {value} read as {value[1:-1].strip()!r}"
    converted = quartz_cron(value)
    if converted is not None:
        return converted, f"Quartz cron {value!r} read as {converted!r}"
    return value, None


def timer(kind: str, text: str) -> tuple[Timer | None, str | None, str | None]:
    """(Timer, note, reason it is unusable) for a timeDuration/timeDate/timeCycle text.

    A jBPM duration is converted to ISO-8601 and the note says so: in a timeDuration it is the wait
    (``2s`` -> ``PT2S``); in a timeCycle it is the period of an unbounded repetition, as jBPM reads it
    (``5m`` -> ``R/PT5M``). jBPM's ``delay###period`` cycles have no ISO-8601 equivalent and are refused."""
    value, note = timer_text(text)
    if not value:
        example = {"timeDuration": "'PT5M'", "timeDate": "'2030-01-01T09:00:00Z'", "timeCycle": "'R/PT1H' or cron"}
        return None, None, f"the {kind} is empty: the timer has no value (give one such as {example[kind]})"
    if is_expression(value):  # evaluated against the variables when the timer is armed (Timer.resolve)
        field = {"timeDuration": "duration", "timeDate": "date", "timeCycle": "cycle"}[kind]
        try:
            return Timer(**{field: value}), f"{kind} {value!r} is an expression: evaluated against the " \
                                            "process variables when the timer is armed", None
        except ValueError as exc:
            return None, None, f"{kind} {value!r}: {_reason(exc)}"
    if kind == "timeCycle" and "###" in value:
        return None, None, (f"timeCycle {value!r} is jBPM's 'delay###period', which has no ISO-8601 equivalent; "
                            "write it as 'R/<start date>/<period>' or as cron")
    if kind in ("timeDuration", "timeCycle"):
        iso = jbpm_duration(value)
        if iso is not None:
            converted = iso if kind == "timeDuration" else f"R/{iso}"
            jbpm_note = f"jBPM duration {value!r} read as ISO-8601 {converted!r}"
            value, note = converted, f"{note}; {jbpm_note}" if note else jbpm_note
    field = {"timeDuration": "duration", "timeDate": "date", "timeCycle": "cycle"}[kind]
    try:
        return Timer(**{field: value}), note, None
    except (ValueError, TimerSpecError, ExpressionError) as exc:
        return None, None, f"{kind} {value!r}: {_reason(exc)}"


def _reason(exc: Exception) -> str:
    """An error's reason; pydantic's without its own wording."""
    if hasattr(exc, "errors"):
        return "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in exc.errors())
    return str(exc)
