"""Extension elements: vendor extensions we can map, and our own namespace.

Vendor mapping (only where the meaning is clear):
- Camunda 7 / Activiti / Flowable (same attribute names): ``assignee``, ``candidateGroups`` -> user task;
  ``formData/formField`` and ``formProperty`` -> form fields; ``class``, ``delegateExpression``,
  ``expression`` -> a service task's agent name; ``type="external"`` + ``topic`` -> its bus topic;
  ``failedJobRetryTimeCycle`` ``R5/PT5M`` -> retry policy; start-event form fields -> declared variables.
- Zeebe (Camunda 8): ``taskDefinition type`` (+ ``retries``) -> agent; ``assignmentDefinition``;
  ``subscription correlationKey`` -> correlation key.
Every vendor attribute or element that is not mapped is listed (as info) by :func:`unmapped`.

Our own fields travel as typed elements of our namespace (see typed.py). Exports before those carried them as one
JSON object in ``<waooaw:fields>``; that form is still read. Where an element has both our fields and the standard
or Camunda form of the same field (a user task's performers, its ``camunda:formData``), ours win.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from engine.bpmn import typed
from engine.bpmn.namespaces import BPMN, CAMUNDA_LIKE, VENDOR_PREFIX, WAOOAW, XSI, ZEEBE, b, q

FIELDS = q(WAOOAW, "fields")
LAYOUT = q(WAOOAW, "layout")

_FORM_TYPES = {
    "string": "string", "text": "text", "long": "integer", "integer": "integer", "int": "integer",
    "short": "integer", "double": "number", "number": "number", "float": "number", "boolean": "boolean",
    "date": "date", "enum": "enum",
}
_VARIABLE_TYPES = {
    "string": "string", "text": "string", "long": "integer", "integer": "integer", "int": "integer",
    "short": "integer", "double": "number", "number": "number", "float": "number", "boolean": "boolean",
    "date": "datetime", "enum": "string",
}
_NAME = re.compile(r"^[A-Za-z_]\w*$")
_WRAPPED = re.compile(r"^\s*[$#]\{(?P<body>.*)\}\s*$", re.DOTALL)


@dataclass
class VendorRead:
    """What the vendor extensions of one element gave, and what they could not give."""

    values: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # warnings: approximations
    used: set[str] = field(default_factory=set)  # "ns|local" of mapped attributes and elements


def extension_elements(el: etree._Element) -> list[etree._Element]:
    ext = el.find(b("extensionElements"))
    return [c for c in ext if isinstance(c.tag, str)] if ext is not None else []


def own_fields(el: etree._Element) -> tuple[dict[str, Any] | None, etree._Element | None, str | None]:
    """(our fields, the element holding them, error) for a BPMN element: the typed elements (typed.py), or the
    JSON object of an older export's ``<waooaw:fields>`` (which wins when both are there: the Designer's canvas
    wrote it over an imported file's typed fields)."""
    children = extension_elements(el)
    if not any(child.tag == FIELDS for child in children):
        holder = next((child for child in children if typed.is_typed(child)), None)
        try:
            return typed.read_fields(children), holder, None
        except typed.TypedFieldsError as exc:
            return None, exc.element if exc.element is not None else holder, str(exc)
    for child in children:
        if child.tag == FIELDS:
            text = (child.text or "").strip() or "{}"
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                return None, child, f"waooaw:fields is not valid JSON: {exc.msg} (column {exc.colno})"
            if not isinstance(data, dict):
                return None, child, "waooaw:fields must hold a JSON object"
            return data, child, None
    return None, None, None


def _attr(el: etree._Element, name: str, out: VendorRead) -> str | None:
    for ns in CAMUNDA_LIKE:
        value = el.get(q(ns, name))
        if value is not None:
            out.used.add(f"{ns}|{name}")
            return value.strip()
    return None


def _vendor_children(el: etree._Element, local: str, namespaces: tuple[str, ...] = CAMUNDA_LIKE
                     ) -> list[etree._Element]:
    found: list[etree._Element] = []
    for child in extension_elements(el):
        qn = etree.QName(child)
        if qn.namespace in namespaces and qn.localname == local:
            found.append(child)
    return found


def _strip_wrapper(text: str) -> str:
    match = _WRAPPED.match(text)
    return match.group("body").strip() if match else text.strip()


def agent(el: etree._Element, out: VendorRead) -> str | None:
    """The implementation of a service/send task as an agent name."""
    zeebe = _vendor_children(el, "taskDefinition", (ZEEBE,))
    if zeebe:
        out.used.add(f"{ZEEBE}|taskDefinition")
        retries = zeebe[0].get("retries")
        if retries and retries.strip().isdigit() and int(retries) >= 1:
            out.values["retry"] = {"attempts": int(retries)}
        kind = (zeebe[0].get("type") or "").strip()
        if kind and not kind.startswith("="):
            return kind
        if kind:
            out.notes.append(f"zeebe:taskDefinition type {kind!r} is an expression; used as the agent name")
            return kind.lstrip("= ").strip() or None
    cls = _attr(el, "class", out)
    if cls:
        return cls
    delegate = _attr(el, "delegateExpression", out)
    if delegate:
        return _strip_wrapper(delegate)
    kind = _attr(el, "type", out)
    topic = _attr(el, "topic", out)
    if kind == "external" and topic:  # Camunda 7 external task: the topic external workers fetch from
        out.values["topic"] = topic
        return None
    expression = _attr(el, "expression", out)
    if expression:
        out.notes.append(f"implemented by the expression {expression!r}: the agent is named by that expression")
        return _strip_wrapper(expression)
    return None


def decision(el: etree._Element, out: VendorRead) -> dict[str, str]:
    """The decision a business rule task calls: ``ref`` (``camunda:decisionRef``, Camunda 8's
    ``zeebe:calledDecision decisionId``) and ``result`` (the variable its result goes to), when given."""
    found: dict[str, str] = {}
    called = _vendor_children(el, "calledDecision", (ZEEBE,))
    if called:
        out.used.add(f"{ZEEBE}|calledDecision")
        if (called[0].get("decisionId") or "").strip():
            found["ref"] = called[0].get("decisionId", "").strip().lstrip("= ").strip()
        if (called[0].get("resultVariable") or "").strip():
            found["result"] = called[0].get("resultVariable", "").strip()
    ref = _attr(el, "decisionRef", out)
    if ref and "ref" not in found:
        found["ref"] = _strip_wrapper(ref)
    for name in ("decisionRefBinding", "decisionRefVersion", "mapDecisionResult", "decisionRefTenantId"):
        _attr(el, name, out)  # how Camunda 7 picks and shapes the decision's result: the agent decides that
    result = _attr(el, "resultVariable", out)
    if result and "result" not in found:
        found["result"] = result
    return found


def retry(el: etree._Element, out: VendorRead) -> None:
    """``camunda:failedJobRetryTimeCycle`` R5/PT5M -> 5 attempts, 5 minutes apart."""
    for child in _vendor_children(el, "failedJobRetryTimeCycle"):
        out.used.add(f"{etree.QName(child).namespace}|failedJobRetryTimeCycle")
        text = (child.text or "").strip()
        match = re.match(r"^R(\d+)/(P\S+)$", text)
        if match and int(match.group(1)) >= 1:
            delay = match.group(2)
            out.values["retry"] = {"attempts": int(match.group(1)), "backoff": delay, "multiplier": 1.0,
                                   "max_backoff": delay}
        else:
            out.notes.append(f"retry cycle {text!r} is not of the form R<n>/<duration>; default retry policy kept")


def user_task(el: etree._Element, out: VendorRead) -> None:
    """Assignee, candidate groups and form from Camunda/Activiti/Flowable/Zeebe or standard BPMN."""
    assignee = _attr(el, "assignee", out)
    groups = _attr(el, "candidateGroups", out)
    for child in _vendor_children(el, "assignmentDefinition", (ZEEBE,)):
        out.used.add(f"{ZEEBE}|assignmentDefinition")
        assignee = assignee or (child.get("assignee") or "").strip() or None
        groups = groups or (child.get("candidateGroups") or "").strip() or None
    standard_groups: list[str] = []
    for role in ("humanPerformer", "potentialOwner"):
        for res in el.findall(b(role)):
            texts = [t.text or "" for t in res.iter(b("formalExpression"))]
            ref = res.find(b("resourceRef"))
            names: list[tuple[str, str]] = []
            for text in texts:
                for kind, name in re.findall(r"(user|group)\(\s*([^)]+?)\s*\)", text):
                    names.append((kind, name))
                if not names and text.strip():
                    names.append(("user" if role == "humanPerformer" else "group", _strip_wrapper(text)))
            if ref is not None and ref.text and not names:
                names.append(("user" if role == "humanPerformer" else "group", _resource_name(el, ref.text)))
            for kind, name in names:
                if kind == "user" and not assignee:
                    assignee = name
                elif kind == "group":
                    standard_groups.append(name)
    if assignee:
        if assignee.startswith("${"):
            out.notes.append(f"assignee {assignee!r} is an expression; kept as text")
        out.values["assignee"] = assignee
    group_list = [g.strip() for g in (groups or "").split(",") if g.strip()] + standard_groups
    if group_list:
        out.values["candidate_groups"] = list(dict.fromkeys(group_list))
    form = form_fields(el, out)
    if form:
        out.values["form"] = form


def _resource_name(el: etree._Element, ref: str) -> str:
    local = ref.split(":")[-1].strip()
    for res in el.getroottree().getroot().iter(b("resource")):
        if res.get("id") == local:
            return res.get("name") or local
    return local


def form_fields(el: etree._Element, out: VendorRead) -> list[dict[str, Any]]:
    """Camunda ``formData/formField`` and Camunda/Activiti/Flowable ``formProperty`` as form fields."""
    fields: list[dict[str, Any]] = []
    raw: list[tuple[etree._Element, str]] = []
    for data in _vendor_children(el, "formData"):
        out.used.add(f"{etree.QName(data).namespace}|formData")
        raw.extend((f, "formField") for f in data if isinstance(f.tag, str) and etree.QName(f).localname == "formField")
    for prop in _vendor_children(el, "formProperty"):
        out.used.add(f"{etree.QName(prop).namespace}|formProperty")
        raw.append((prop, "formProperty"))
    for item, kind in raw:
        name = (item.get("id") or "").strip()
        if not _NAME.match(name):
            out.notes.append(f"{kind} {name!r} is not a usable field name (letters, digits, _): left out")
            continue
        vendor_type = (item.get("type") or "string").strip()
        ftype = _FORM_TYPES.get(vendor_type)
        if ftype is None:
            out.notes.append(f"{kind} {name!r} has type {vendor_type!r}; imported as string")
            ftype = "string"
        entry: dict[str, Any] = {"name": name, "type": ftype}
        label = item.get("label") if kind == "formField" else item.get("name")
        if label:
            entry["label"] = label
        values = [v for v in item.iter() if isinstance(v.tag, str) and etree.QName(v).localname == "value"]
        if ftype == "enum":
            choices = [(v.get("id") or v.get("name") or "").strip() for v in values]
            choices = [c for c in choices if c]
            if not choices:
                out.notes.append(f"{kind} {name!r} is an enum without values; imported as string")
                entry["type"] = ftype = "string"
            else:
                entry["choices"] = choices
        required = (item.get("required") or "").lower() == "true" or any(
            (c.get("name") or "") == "required" for c in item.iter() if isinstance(c.tag, str)
            and etree.QName(c).localname == "constraint")
        if required:
            entry["required"] = True
        default = item.get("defaultValue") if kind == "formField" else item.get("default")
        if default is not None and default != "":
            entry["default"] = _typed(default, ftype)
        if kind == "formProperty" and (item.get("expression") or item.get("variable")):
            bound = (item.get("variable") or "").strip()
            if not bound:  # expression="${x}" (Activiti/Flowable) binds the variable x
                match = re.fullmatch(r"\s*[$#]\{\s*([A-Za-z_]\w*)\s*\}\s*", item.get("expression") or "")
                bound = match.group(1) if match else ""
            if _NAME.match(bound):
                if bound != name:
                    entry["variable"] = bound  # completing the task sets this variable
            else:
                out.notes.append(f"formProperty {name!r}: binding {item.get('expression') or bound!r} is not a "
                                 "variable name; the field sets the variable named after it")
        fields.append(entry)
    return fields


def _typed(text: str, ftype: str) -> Any:
    try:
        if ftype == "integer":
            return int(text)
        if ftype == "number":
            return float(text)
    except ValueError:
        return text
    if ftype == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def start_variables(el: etree._Element, out: VendorRead) -> list[dict[str, Any]]:
    """A start event's form declares what an instance is started with: process variables."""
    variables = []
    for entry in form_fields(el, out):
        vendor_type = entry["type"]
        decl: dict[str, Any] = {"name": entry["name"], "type": _VARIABLE_TYPES.get(vendor_type, "any")}
        if entry.get("default") is not None:
            decl["default"] = entry["default"]
        if entry.get("label"):
            decl["description"] = entry["label"]
        if entry.get("required"):
            decl["required"] = True
        variables.append(decl)
    return variables


def correlation_key(el: etree._Element, message: etree._Element | None, out: VendorRead) -> str | None:
    """Zeebe puts the correlation key on the message: ``zeebe:subscription correlationKey="=orderId"``."""
    if message is None:
        return None
    for sub in _vendor_children(message, "subscription", (ZEEBE,)):
        key = (sub.get("correlationKey") or "").strip()
        if key:
            return key
    return None


def message_payload(definition: etree._Element) -> tuple[str | None, str | None]:
    """(payload expression, result variable) of a ``messageEventDefinition``, in the dialects SpiffWorkflow
    writes: ``spiffworkflow:messagePayload`` / ``spiffworkflow:messageVariable`` extension elements, or the
    Camunda-style attributes ``camunda:expression`` / ``camunda:resultVariable`` its Camunda parser reads."""
    expression = variable = None
    for name, value in definition.attrib.items():
        local = etree.QName(name).localname if name.startswith("{") else ""
        if local == "expression" and value.strip():
            expression = value.strip()
        elif local == "resultVariable" and value.strip():
            variable = value.strip()
    for child in extension_elements(definition):
        local = etree.QName(child).localname
        text = "".join(child.itertext()).strip()
        if local == "messagePayload" and text:
            expression = text
        elif local == "messageVariable" and text:
            variable = text
    if expression is not None:
        match = re.fullmatch(r"\s*[$#]\{(.*)\}\s*", expression, flags=re.S)
        expression = match.group(1).strip() if match else expression
    return expression, variable


def unmapped(el: etree._Element, used: set[str]) -> list[str]:
    """Vendor attributes and extension elements of ``el`` that were not mapped (``camunda:asyncBefore``)."""
    left: list[str] = []
    for name in el.attrib:
        if name.startswith("{"):
            qn = etree.QName(name)
            if qn.namespace in (XSI, WAOOAW) or f"{qn.namespace}|{qn.localname}" in used:
                continue
            left.append(f"{_prefix(el, qn.namespace)}:{qn.localname}")
    for child in extension_elements(el):
        qn = etree.QName(child)
        if qn.namespace == WAOOAW or f"{qn.namespace}|{qn.localname}" in used:
            continue
        left.append(f"{_prefix(el, qn.namespace)}:{qn.localname}")
    return sorted(set(left))


def _prefix(el: etree._Element, ns: str | None) -> str:
    if ns in VENDOR_PREFIX:
        return VENDOR_PREFIX[ns]
    for prefix, uri in el.nsmap.items():
        if uri == ns and prefix:
            return prefix
    return ns or "?"


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` wins; nested mappings are merged so JSON can add a timer's zone to its standard value."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def is_bpmn(el: etree._Element) -> bool:
    return isinstance(el.tag, str) and etree.QName(el).namespace == BPMN
