"""The Designer's property panel, generated from the model's pydantic field definitions.

Every field of a node kind gets a widget chosen by its type (text, number, check box, choice, list, nested
model, table of sub-models), so a field added to ``engine/model/nodes.py`` appears here without UI work. A few
fields get a better widget by name: an agent is picked from the agent registry, a timer gets a plain-words
preview and its next firings, an SLA is entered in hours, a condition is checked by the expression parser as
it is typed. :func:`edit` returns the new field values; the caller validates them with the model.
"""

from __future__ import annotations

import inspect
import json
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import streamlit as st
from pydantic import BaseModel

from app.designer import HIDDEN_FIELDS
from engine.errors import ExpressionError, TimerSpecError
from engine.model import expressions
from engine.model.nodes import Node, SequenceFlow
from engine.model.timers import Timer, format_duration, is_cron, parse_duration

HANDLER_FIELDS = {"agent", "compensation", "handler"}
ITEM_NAMES = {"form": "form field", "variables": "variable"}
HINTS = {
    "agent": "The Python callable that does the work, by its registered name (module:function).",
    "compensation": "What undoes this activity when a later step compensates it: an agent, or a compensation "
                    "handler activity of this design (one marked for_compensation, drawn from a compensation "
                    "boundary event).",
    "input_variables": "Process variables passed to the agent (comma-separated).",
    "output_variables": "Keys of the agent's result written back as process variables (comma-separated).",
    "candidate_groups": "Groups whose members may claim the task (comma-separated).",
    "requires_claim": "A group member must claim the task before completing it (else completing claims it).",
    "timeout": "ISO-8601 duration after which a call counts as failed, e.g. PT30S.",
    "backoff": "ISO-8601 duration before the first retry, e.g. PT1S.",
    "max_backoff": "Longest wait between retries (ISO-8601), e.g. PT10M.",
    "sla_calendar": "Count the SLA in this business calendar's working hours (empty: wall-clock hours).",
    "correlation_key": "An expression over process variables that picks the waiting instance.",
    "outputs": "Payload fields copied into variables (comma-separated; empty: all).",
    "payload": "Variables sent with the message (comma-separated).",
    "error_code": "The business error's code (an error boundary without a code catches every error).",
    "activity": "The activity to compensate (empty: the whole enclosing scope).",
    "active_elements": "An ad-hoc sub-process: an expression giving the list of inner element ids to run on entry, "
                       "e.g. ['draft', 'review'] or a variable (empty: every element without incoming flow).",
    "completion_condition": "Checked after each inner activity completes: when it holds, the ad-hoc sub-process "
                            "completes.",
    "cancel_remaining": "When the completion condition holds, cancel the inner work still running (else wait "
                        "for it).",
    "ordering": "sequential: run the activated elements one after another; parallel: all at once.",
}


@dataclass
class PanelContext:
    """What the widgets offer as choices."""

    agents: list[str] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    activities: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)  # known people (the accounts), offered as assignees
    groups: list[str] = field(default_factory=list)  # known groups, offered as candidate groups
    outgoing: dict[str, str] = field(default_factory=dict)  # the selected node's outgoing flows: id -> label
    # ids of the design's compensation handler activities (for_compensation): a ``compensation`` may name one,
    # and validation (engine.validate.handler_problems) then checks the activity, not an agent of that name
    handlers: list[str] = field(default_factory=list)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


_ACRONYMS = {"sla": "SLA", "id": "id", "url": "URL", "api": "API"}


def label_of(name: str) -> str:
    """A field's label: ``sla_calendar`` -> "SLA calendar" (words capitalised as a sentence, acronyms kept)."""
    words = [_ACRONYMS.get(w, w) for w in name.split("_")]
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(the type without Optional/Annotated, whether None is allowed)."""
    optional = False
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            optional = optional or len(args) < len(get_args(tp))
            if len(args) != 1:
                return tp, optional
            tp = args[0]
        else:
            return tp, optional


def _is_model(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def edit(cls: type[BaseModel], data: dict[str, Any], key: str, ctx: PanelContext,
         hidden: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """Widgets for every field of ``cls`` shown with ``data`` (JSON-mode values); returns the edited values."""
    out: dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        if name in HIDDEN_FIELDS or name in hidden:
            continue
        current = data.get(name, None if info.is_required() else info.get_default(call_default_factory=True))
        if isinstance(current, BaseModel):
            current = current.model_dump(mode="json")
        out[name] = _field(name, info.annotation, current, f"{key}.{name}", ctx)
    return out


def _field(name: str, annotation: Any, value: Any, key: str, ctx: PanelContext) -> Any:
    tp, optional = _unwrap(annotation)
    label, hint = label_of(name), HINTS.get(name)
    if name in HANDLER_FIELDS:
        return agent_picker(label, value, key, ctx, optional=optional, hint=hint,
                            activities=ctx.handlers if name == "compensation" else ())
    if tp is Timer:
        return timer_editor(value or {}, key, ctx)
    if name == "sla":
        return sla_hours(value, key)
    if name in ("condition", "correlation_key"):
        return expression_input(label, value, key, ctx, hint)
    if name == "candidate_groups" and ctx.groups:
        chosen = st.multiselect(label, sorted(set(ctx.groups) | set(value or [])), default=value or [], key=key,
                                accept_new_options=True, help="Groups whose members may claim the task: pick a "
                                "known group or type a new one.")
        return list(chosen)
    if name == "assignee" and ctx.users:
        options = sorted(set(ctx.users) | ({value} if value else set()))
        return st.selectbox(label, options, index=options.index(value) if value else None, key=key,
                            accept_new_options=True, placeholder="— (nobody: the candidate groups claim it)",
                            help="The person who does the task: pick a known user or type a user name.")
    if name == "default" and tp is str:
        return default_flow(label, value, key, ctx, hint)
    if name == "documentation":
        text = st.text_area(label, value or "", key=key, height=68)
        return text or None
    origin = get_origin(tp)
    if origin is Literal:
        choices = list(get_args(tp))
        options = ([None] if optional else []) + choices
        index = options.index(value) if value in options else 0
        return st.selectbox(label, options, index=index, key=key, help=hint,
                            format_func=lambda v: "—" if v is None else str(v))
    if tp is bool and optional:  # three states: unset (the model decides), yes, no
        options = [None, True, False]
        return st.selectbox(label, options, index=options.index(value) if value in options else 0, key=key,
                            help=hint, format_func=lambda v: {None: "— (automatic)", True: "yes", False: "no"}[v])
    if tp is bool:
        return st.checkbox(label, bool(value), key=key, help=hint)
    if tp is int or tp is float:
        number = st.number_input(label, value=value if value is not None else None, key=key, help=hint,
                                 step=1 if tp is int else 0.5, format="%d" if tp is int else "%.2f")
        return None if number is None else tp(number)
    if origin is list:
        (item,) = get_args(tp) or (str,)
        item_tp, _ = _unwrap(item)
        if _is_model(item_tp):
            return list_editor(label, item_tp, value or [], key, ctx)
        text = st.text_input(label, ", ".join(str(v) for v in (value or [])), key=key, help=hint)
        items = [part.strip() for part in text.split(",") if part.strip()]
        return items if (items or not optional) else None
    if _is_model(tp):
        if optional:
            on = st.checkbox(label, value is not None, key=f"{key}.on", help=hint)
            if not on:
                return None
        with st.container(border=True):
            st.caption(label)
            return edit(tp, value or {}, key, ctx)
    if origin is dict or tp is dict:
        text = st.text_input(f"{label} (JSON)", json.dumps(value or {}), key=key, help=hint)
        try:
            return json.loads(text or "{}")
        except json.JSONDecodeError as exc:
            st.error(f"{label}: not JSON ({exc.msg})")
            return value
    text = st.text_input(label, "" if value is None else str(value), key=key, help=hint)
    return (text or None) if optional or tp is Any else text


def agent_picker(label: str, value: str | None, key: str, ctx: PanelContext, optional: bool = True,
                 hint: str | None = None, activities: list[str] | tuple[str, ...] = ()) -> str | None:
    """Pick an agent from the registry, or type any name (a warning says when it does not resolve, as
    :func:`engine.validate.handler_problems` does). ``activities``: ids of the design's own compensation handler
    activities, offered first and never warned about (the compensation field may name one)."""
    from engine.registry import resolve

    other = "other (type a name)…"
    handlers = sorted(set(activities))
    options = ([None] if optional else []) + handlers + sorted(set(ctx.agents) - set(handlers)) + [other]
    index = options.index(value) if value in options else len(options) - 1 if value else 0
    choice = st.selectbox(label, options, index=index, key=key, help=hint,
                          format_func=lambda v: "—" if v is None else
                          f"{v} (compensation handler activity)" if v in handlers else v)
    if choice == other:
        choice = st.text_input(f"{label}: name", value or "", key=f"{key}.other",
                               placeholder="module:function") or None
    if choice and choice in handlers:
        st.caption(f"Runs the compensation handler activity {choice!r} of this design.")
    elif choice:
        try:
            resolve(choice)
        except Exception:  # any failure to find it is the same message to the designer
            st.warning(f"{choice!r} does not resolve to a registered agent or an importable module:function; "
                       "the engine would fail this step")
    return choice


def flow_label(flow: SequenceFlow, nodes: Mapping[str, Node]) -> str:
    """How a flow is offered in a list: its name (else id), then where it goes: ``rejected → Create issue``."""
    target = nodes.get(flow.target)
    return f"{flow.name or flow.id} → {target.label if target is not None else flow.target}"


def default_flow(label: str, value: str | None, key: str, ctx: PanelContext, hint: str | None) -> str | None:
    """The default flow: one of the node's outgoing flows, shown by where it goes (BPMN 2.0 §10.5.1
    ``default``: taken when no other outgoing flow's condition holds). A stale id is kept and shown."""
    options: list[str | None] = [None, *ctx.outgoing]
    if value and value not in ctx.outgoing:
        options.append(value)
    return st.selectbox(label, options, index=options.index(value) if value in options else 0, key=key,
                        help=hint or "Taken when no other outgoing flow's condition holds.",
                        format_func=lambda v: "— (none)" if v is None else ctx.outgoing.get(
                            v, f"{v} (not an outgoing flow of this element)"))


def sla_hours(value: str | None, key: str) -> str | None:
    """The SLA in hours (0: none), stored as an ISO-8601 duration."""
    try:
        hours = parse_duration(value).total_seconds() / 3600 if value else 0.0
    except TimerSpecError:
        hours = 0.0
    entered = st.number_input("SLA (hours)", min_value=0.0, value=float(hours), step=1.0, key=key,
                              help="Due this many hours after the task opens; 0: no SLA.")
    return format_duration(timedelta(hours=entered)) if entered else None


def expression_input(label: str, value: str | None, key: str, ctx: PanelContext, hint: str | None) -> str | None:
    """A condition or key, parsed as it is typed; unknown variable names are pointed out."""
    text = st.text_input(label, value or "", key=key, help=hint or "A Python-like expression over process "
                         "variables, e.g. amount > 1000 and approved")
    if not text.strip():
        return None
    try:
        expressions.parse(text)
    except ExpressionError as exc:
        st.error(f"{label}: {exc}")
        return text
    names = _names(text)
    unknown = sorted(n for n in names if ctx.variables and n not in ctx.variables)
    if unknown:
        st.warning(f"{label}: not declared as process variables: {', '.join(unknown)}")
    return text


def _names(text: str) -> set[str]:
    import ast

    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id not in ("True", "False", "None")}


def list_editor(label: str, model: type[BaseModel], rows: list[dict[str, Any]], key: str,
                ctx: PanelContext) -> list[dict[str, Any]]:
    """A list of sub-models (form fields, variables): each item with its own generated widgets, an Add button
    and a Remove button per item. Items not yet valid are kept in the widgets and left to the model to refuse."""
    count_key = f"{key}.n"
    count = st.session_state.get(count_key, len(rows))
    st.markdown(f"**{label}**")
    out: list[dict[str, Any]] = []
    removed = None
    for i in range(count):
        with st.container(border=True):
            item = rows[i] if i < len(rows) else {}
            values = edit(model, item, f"{key}[{i}]", ctx)
            if st.button("Remove", key=f"{key}[{i}].remove", type="tertiary"):
                removed = i
            out.append({k: v for k, v in values.items() if v is not None and v != []})
    singular = ITEM_NAMES.get(key.rsplit(".", 1)[-1], label.rstrip("s").lower())
    if st.button(f"Add {singular}", key=f"{key}.add"):
        st.session_state[count_key] = count + 1
        st.rerun()
    if removed is not None:
        del out[removed]
        st.session_state[count_key] = count - 1
    return out


# --- timers -----------------------------------------------------------------------------------------------------


def describe_timer(timer: Timer, now: datetime, count: int = 3) -> tuple[str, list[datetime]]:
    """Plain words for a timer and its next ``count`` firings from ``now`` (wall clock, the timer's zone)."""
    zone = timer.timezone or "UTC"
    if timer.expression is not None:
        return f"the {timer.kind} {timer.expression} gives, computed from the variables when it starts waiting", []
    if timer.duration:
        return f"{_words(parse_duration(timer.duration))} after arrival", []
    if timer.date:
        due = timer.first_due(now)
        return f"once, at {timer.date}" + (f" ({zone})" if timer.timezone else ""), [due] if due else []
    text = (timer.cycle or "").strip()
    if is_cron(text):
        from cron_descriptor import get_description

        words = f"{get_description(text)}, {zone}"
    else:
        count_text, _, rest = text.partition("/")
        interval = next((p for p in rest.split("/") if p.startswith("P")), None)
        times = count_text[1:]
        words = (f"every {_words(parse_duration(interval))}" if interval else text) + (
            f", {times} times" if times else ", without end")
    firings: list[datetime] = []
    due = timer.first_due(now)
    fired = 0
    while due is not None and len(firings) < count:
        firings.append(due)
        fired += 1
        due = timer.next_due(due, fired)
    return words, firings


def _words(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size:
            n, seconds = divmod(seconds, size)
            parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
    return " ".join(parts) or "0 seconds"


def timer_editor(value: dict[str, Any], key: str, ctx: PanelContext) -> dict[str, Any]:
    kinds = ["duration", "date", "cycle"]
    current = next((k for k in kinds if value.get(k)), "duration")
    kind = st.radio("Timer", kinds, index=kinds.index(current), key=f"{key}.kind", horizontal=True,
                    format_func={"duration": "after a duration", "date": "at a date",
                                 "cycle": "on a cycle / cron"}.get)
    placeholder = {"duration": "P7D", "date": "2026-12-01T09:00:00", "cycle": "0 9 * * 1-5  or  R/PT1H"}[kind]
    text = st.text_input({"duration": "Duration (ISO-8601)", "date": "Date and time (ISO-8601)",
                          "cycle": "Cycle (cron or ISO repeating interval)"}[kind],
                         value.get(kind) or "", key=f"{key}.{kind}", placeholder=placeholder)
    zone = st.text_input("Time zone (IANA)", value.get("timezone") or "", key=f"{key}.timezone",
                         placeholder="Europe/Berlin", help="Dates without an offset and cron times are read here.")
    out: dict[str, Any] = {kind: text.strip() or None}
    if zone.strip():
        out["timezone"] = zone.strip()
    if text.strip():
        try:
            words, firings = describe_timer(Timer.model_validate(out), ctx.now)
        except (ValueError, TimerSpecError) as exc:
            st.error(f"Timer: {exc}")
        else:
            when = "; ".join(f.astimezone(_zone(out.get("timezone"))).strftime("%a %Y-%m-%d %H:%M %Z")
                             for f in firings)
            st.caption(f"⏱ {words}" + (f" — next: {when}" if when else ""))
    return out


def _zone(name: str | None) -> Any:
    from engine.model.timers import zone

    try:
        return zone(name)
    except TimerSpecError:
        return UTC
