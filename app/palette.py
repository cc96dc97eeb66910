"""The canvas's palette, generated from the process model's node kinds (``engine.model.nodes.NODE_CLASSES``).

One entry per kind, plus the other BPMN elements a kind may be drawn as (a message end event and a send task are
both ``message_throw``; a compensation end event is ``compensation_throw``),
the non-interrupting form of a boundary event that has one, and the compensation boundary event (structure: the
task it is connected to becomes the activity's compensation handler; bpmn-js sets ``isForCompensation``).
The BPMN element of a kind is the one the exporter writes (:data:`engine.bpmn.mapping.DEFAULT_TAG`); its event
definition follows from the kind's name (:data:`DEFINITION_WORDS`), so a kind added to the model appears in the
palette without frontend work.

Each entry is a dict the canvas component (``frontend/src/palette.js``) turns into a create tool::

    {"action": "create.timer_start", "kind": "timer_start", "group": "event", "type": "bpmn:StartEvent",
     "icon": "bpmn-icon-start-event-timer", "title": "Timer start event: Starts a new instance ...",
     "options": {"eventDefinitionType": "bpmn:TimerEventDefinition", "expression": ["timeCycle", "0 9 * * 1-5"]}}

``options`` may also hold ``cancelActivity`` (False: non-interrupting), ``isForCompensation``,
``definition`` (attributes of the event definition, e.g. a link's name), ``message`` (a send task's message) and
``properties`` (attributes of the element itself, e.g. a script task's first script), ``container``
("eventSubProcess": the shape goes into a new event sub-process; "transaction": a new transaction with a cancel
end event inside (``cancelEnd``) and a cancel boundary event (``cancelBoundary``)) and ``start`` (the event
definition of an event sub-process's start).
"""

from __future__ import annotations

import re
from typing import Any

from engine.bpmn.mapping import DEFAULT_TAG
from engine.model.nodes import NODE_CLASSES

# A word in the kind's name -> its BPMN event definition (bpmn-font's icon word).
DEFINITION_WORDS: dict[str, tuple[str, str]] = {
    "timer": ("bpmn:TimerEventDefinition", "timer"),
    "message": ("bpmn:MessageEventDefinition", "message"),
    "error": ("bpmn:ErrorEventDefinition", "error"),
    "signal": ("bpmn:SignalEventDefinition", "signal"),
    "escalation": ("bpmn:EscalationEventDefinition", "escalation"),
    "conditional": ("bpmn:ConditionalEventDefinition", "condition"),
    "link": ("bpmn:LinkEventDefinition", "link"),
    "compensation": ("bpmn:CompensateEventDefinition", "compensation"),
    "terminate": ("bpmn:TerminateEventDefinition", "terminate"),
    "cancel": ("bpmn:CancelEventDefinition", "cancel"),
}
# Other elements a kind is drawn as, offered beside its own: (kind, BPMN element, title).
VARIANTS: list[tuple[str, str, str]] = [
    ("message_throw", "endEvent", "Message end event"),
    ("message_throw", "sendTask", "Send task"),
    ("compensation_throw", "endEvent", "Compensation end event"),
]
# A new element starts with the value its kind cannot do without, changed in the property panel.
FIRST_VALUES: dict[str, dict[str, Any]] = {
    "timer_start": {"expression": ["timeCycle", "0 9 * * 1-5"]},  # weekdays at 09:00
    "conditional": {"expression": ["condition", "true"]},
    "timer": {"expression": ["timeDuration", "PT1H"]},
    "link": {"definition": {"name": "link"}},
    "sendTask": {"message": "message"},  # a send task is a message throw only with its message
    "scriptTask": {"properties": {"scriptFormat": "waooaw", "script": "result = None"}},
    "callActivity": {"properties": {"calledElement": "process"}},  # the process it calls, named in the panel
}
# Start events that start only an event sub-process: offered inside a new one (BPMN 2.0 §10.5.2).
EVENT_SUBPROCESS_STARTS = {"error_start", "escalation_start", "conditional_start"}
# Cancel events exist only with a transaction (BPMN 2.0 §10.4.3). Their own entries make just the event: bpmn-js's
# rules (BpmnRules.canReplace) keep it when it is dropped inside a transaction (a cancel end event) or on its border
# (a cancel boundary event) and make it a plain end / boundary event anywhere else. A separate entry makes a new
# transaction holding both.
CANCEL_HEADS = {"cancel_end": "Cancel end event (drop it inside a transaction; elsewhere it becomes a plain end "
                              "event)",
                "boundary_cancel": "Cancel boundary event (drop it on a transaction's border; elsewhere it becomes "
                                   "a plain boundary event)"}
GROUPS = ("event", "boundary", "gateway", "activity")
_GATEWAY_ICONS = {"exclusiveGateway": "gateway-xor", "parallelGateway": "gateway-parallel",
                  "inclusiveGateway": "gateway-or", "eventBasedGateway": "gateway-eventbased",
                  "complexGateway": "gateway-complex"}
_HEADS = {"sub_process": "Embedded sub-process", "event_gateway": "Event-based gateway",
          "ad_hoc_sub_process": "Ad-hoc sub-process"}
_TAG_WORDS = {"startEvent": "start event", "endEvent": "end event", "intermediateCatchEvent": "catch event",
              "intermediateThrowEvent": "throw event", "boundaryEvent": "boundary event"}


def _kebab(tag: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"-\1", tag).lower()


def _word(kind: str) -> str | None:
    """The kind's event definition word ("timer" of ``boundary_timer``), None for a none event or no event."""
    return next((w for w in kind.split("_") if w in DEFINITION_WORDS), None)


def _definition(kind: str) -> tuple[str, str] | None:
    word = _word(kind)
    return DEFINITION_WORDS[word] if word else None


def _icon(tag: str, word: str | None, interrupting: bool = True) -> str:
    non = "" if interrupting else "non-interrupting-"
    if tag == "startEvent":
        return f"bpmn-icon-start-event-{non}{word or 'none'}"
    if tag == "endEvent":
        return f"bpmn-icon-end-event-{word or 'none'}"
    if tag in ("intermediateCatchEvent", "boundaryEvent"):
        return f"bpmn-icon-intermediate-event-catch-{non}{word or 'none'}"
    if tag == "intermediateThrowEvent":
        return f"bpmn-icon-intermediate-event-throw-{word}" if word else "bpmn-icon-intermediate-event-none"
    if tag in _GATEWAY_ICONS:
        return f"bpmn-icon-{_GATEWAY_ICONS[tag]}"
    if tag == "subProcess":
        return "bpmn-icon-subprocess-expanded"
    if tag == "adHocSubProcess":
        return "bpmn-icon-ad-hoc-subprocess"
    return f"bpmn-icon-{_kebab(tag)}"


def _group(tag: str) -> str:
    if tag == "boundaryEvent":
        return "boundary"
    if tag.endswith("Event"):
        return "event"
    if tag.endswith("Gateway"):
        return "gateway"
    return "activity"


def _title(kind: str, tag: str, word: str | None, head: str | None = None) -> str:
    """"Timer start event: Starts a new instance at ..." (the kind's docstring's first sentence)."""
    cls = NODE_CLASSES[kind]
    if head is None and tag in _TAG_WORDS:
        head = f"{word.capitalize()} {_TAG_WORDS[tag]}" if word else _TAG_WORDS[tag].capitalize()
        if tag == "intermediateThrowEvent" and not word:
            head = "Intermediate throw event (none)"
    elif head is None:
        head = _HEADS.get(kind) or re.sub(r"(?<=[a-z])([A-Z])", r" \1", cls.__name__).capitalize()
    if tag == "boundaryEvent":
        head += " (drop it on a task's border)"
    doc = " ".join((cls.__doc__ or "").replace("``", "").split())
    sentence = doc.split(". ")[0].rstrip(".")
    return f"{head}: {sentence}" if sentence else head


def _options(kind: str, tag: str, definition: tuple[str, str] | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if definition and not tag.endswith("Task"):
        options["eventDefinitionType"] = definition[0]
        word = kind if kind in FIRST_VALUES else next((w for w in kind.split("_") if w in FIRST_VALUES), None)
        if word:
            options.update(FIRST_VALUES[word])
    return options


def _entry(kind: str, tag: str, head: str | None = None, action: str | None = None, **extra: Any
           ) -> dict[str, Any]:
    definition = None if tag.endswith("Task") else _definition(kind)
    options = {**_options(kind, tag, definition), **FIRST_VALUES.get(tag, {}), **extra}
    icon = _icon(tag, definition[1] if definition else None, options.get("cancelActivity", True))
    return {"action": action or f"create.{kind}", "kind": kind, "group": _group(tag),
            "type": f"bpmn:{tag[0].upper()}{tag[1:]}", "icon": icon,
            "title": _title(kind, tag, _word(kind) if definition else None, head), "options": options}


def palette_entries() -> list[dict[str, Any]]:
    """Every create tool of the palette, grouped (events, boundary events, gateways, activities)."""
    entries: list[dict[str, Any]] = []
    for kind, cls in NODE_CLASSES.items():
        tag = DEFAULT_TAG.get(kind)
        if tag is None:
            continue  # a kind the exporter cannot write yet has no element to draw
        if kind in CANCEL_HEADS:  # just the event, into or onto an existing transaction
            entry = _entry(kind, tag)
            entry["title"] = f"{CANCEL_HEADS[kind]}: {entry['title'].split(': ', 1)[1]}"
            entries.append(entry)
            continue
        if kind in EVENT_SUBPROCESS_STARTS:
            entry = _entry(kind, tag, container="eventSubProcess")
            entry["group"] = "activity"
            entry["title"] = entry["title"].replace(": ", " (in a new event sub-process): ", 1)
            entries.append(entry)
            continue
        entries.append(_entry(kind, tag))
        if tag == "boundaryEvent" and "interrupting" in cls.model_fields and kind != "boundary_error":
            word = _word(kind) or "event"
            entries.append(_entry(kind, tag, head=f"{word.capitalize()} boundary event, non-interrupting",
                                  action=f"create.{kind}.non-interrupting", cancelActivity=False))
        for variant_kind, variant_tag, head in VARIANTS:
            if variant_kind == kind and variant_tag not in DEFAULT_TAG.values():  # not yet a kind of its own
                entries.append(_entry(kind, variant_tag, head=head, action=f"create.{kind}.{variant_tag}"))
    if "triggered_by_event" in NODE_CLASSES["sub_process"].model_fields:
        entry = _entry("sub_process", "subProcess", head="Event sub-process", action="create.event_sub_process",
                       container="eventSubProcess", start="bpmn:MessageEventDefinition")
        entry["icon"] = "bpmn-icon-event-subprocess-expanded"
        entry["title"] = ("Event sub-process: runs when its start event fires while the (sub-)process is active "
                          "(change the start's type with the wrench)")
        entries.append(entry)
    if "transaction" in NODE_CLASSES["sub_process"].model_fields:
        entry = _entry("sub_process", "transaction", head="Transaction", action="create.transaction")
        entry["title"] = ("Transaction: a sub-process whose cancel end event cancels it, undoes what completed in it "
                          "(compensation, newest first) and leaves by its cancel boundary event")
        entries.append(entry)
        if "cancel_end" in NODE_CLASSES:
            entry = _entry("cancel_end", "endEvent", action="create.cancel_end.transaction", container="transaction",
                           cancelEnd=True, cancelBoundary=True)
            entry.update(group="activity", icon="bpmn-icon-transaction",
                         title="Transaction with a cancel end event and its cancel boundary event (to add either "
                               "to an existing transaction, use the cancel end or cancel boundary entry)")
            entries.append(entry)
    entries.append({"action": "create.compensation_boundary", "kind": None, "group": "boundary",
                    "type": "bpmn:BoundaryEvent", "icon": "bpmn-icon-intermediate-event-catch-compensation",
                    "title": "Compensation boundary event (drop it on a task, then connect it to the task that "
                             "undoes it: bpmn-js makes that task its compensation handler)",
                    "options": {"eventDefinitionType": "bpmn:CompensateEventDefinition"}})
    order = {g: i for i, g in enumerate(GROUPS)}
    return sorted(entries, key=lambda e: order[e["group"]])  # stable: the model's order within a group


PALETTE = palette_entries()
