"""Our extension fields as typed XML in the ``waooaw`` namespace, and back.

What BPMN has no element for travels inside ``bpmn:extensionElements`` as elements and attributes named after
the model's fields (camelCase), so a reader sees ``<waooaw:retry attempts="5" backoff="PT5M"/>`` rather than a
JSON blob, and bpmn-js keeps every element through ``saveXML`` (they are declared in its moddle descriptor, made
by :func:`moddle_descriptor` from the same tables; ``python -m engine.bpmn.typed`` prints it).

The elements (``ns`` = ``https://waooaw.dev/schema/bpmn/1.0``):

- ``<waooaw:properties a="..." .../>``: every scalar field of the element (``agent``, ``topic``, ``timeout``,
  ``title``, ``assignee``, ``requiresClaim``, ``sla``, ``slaCalendar``, ``binding``, ``version``,
  ``resultVariable``, ``correlationKey``, ``payloadExpression``, ``forCompensation``, ``handler``, ...);
  booleans ``true``/``false``, numbers in decimal.
- a nested model is one element named after its field, its scalars as attributes: ``<waooaw:retry>``
  (attempts, backoff, multiplier, maxBackoff), ``<waooaw:timer>`` (timezone, calendar), ``<waooaw:multiInstance>``
  (collection, outputCollection, outputElement), ``<waooaw:onTimeout>`` (action, assignee, message, handler; its
  ``values`` as ``<waooaw:entry>`` children), ``<waooaw:loop>``.
- a list of models is one element per item: ``<waooaw:formField name= type= label= required= variable=>`` (its
  ``<waooaw:choices>`` and ``<waooaw:default>``), ``<waooaw:variable name= type= required= input= sensitive=
  description=>`` (its ``<waooaw:default>``).
- a list of names is a container of items: ``<waooaw:candidateGroups><waooaw:item value="sales"/>...``
  (also ``inputVariables``, ``outputVariables``, ``payload``, a message catch's ``outputs``).
- a name -> expression mapping (a call activity's ``inputs`` / ``outputs``):
  ``<waooaw:inputs><waooaw:mapping variable="x" expression="order.total"/>...``.
- a value of any type (a form default, ``metadata``, ``onTimeout`` values) is typed:
  ``<waooaw:entry key="k" type="string|integer|number|boolean|null|list|map" value="...">`` with the items of a
  list or map as ``<waooaw:entry>`` children.

Old exports carried the same fields as one JSON object in ``<waooaw:fields>``; :mod:`engine.bpmn.extensions`
still reads that form.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from lxml import etree
from pydantic import BaseModel

from engine.bpmn.namespaces import WAOOAW, q
from engine.model.definition import ProcessDefinition, VariableDecl
from engine.model.nodes import (
    NODE_CLASSES,
    FormField,
    MultiInstance,
    OnTimeout,
    RetryPolicy,
    SequenceFlow,
    StandardLoop,
)
from engine.model.timers import Timer

PROPERTIES = "properties"
ITEM, MAPPING, ENTRY, DEFAULT, CHOICES = "item", "mapping", "entry", "default", "choices"
VALUE_TYPES = ("string", "integer", "number", "boolean", "null", "list", "map")

# A field holding one model: its element name is the field's camelCase name.
NESTED: dict[str, type[BaseModel]] = {
    "retry": RetryPolicy, "timer": Timer, "multi_instance": MultiInstance, "on_timeout": OnTimeout,
    "loop": StandardLoop,
}
# A field holding a list of models: one element per item.
REPEATED: dict[str, tuple[str, type[BaseModel]]] = {"form": ("formField", FormField),
                                                    "variables": ("variable", VariableDecl)}
# Fields of any type (a value of any shape): the typed entry encoding.
ANY_FIELDS = {"default", "metadata", "values"}
# Scalars our writer adds that no model has: a compensation stand-in task's handler reference.
EXTRA_SCALARS: dict[str, type] = {"handler": str}


class TypedFieldsError(ValueError):
    """A typed extension element that cannot be read: the message names the element and attribute; ``element``
    is that element (its ``sourceline`` the line) when reading."""

    def __init__(self, message: str, element: etree._Element | None = None) -> None:
        super().__init__(message)
        self.element = element


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _scalar(annotation: Any) -> type | None:
    """str / int / float / bool for a scalar annotation (Optional, Annotated and Literal unwrapped), else None."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _scalar(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        found = {_scalar(a) for a in get_args(annotation) if a is not type(None)}
        return found.pop() if len(found) == 1 else None
    if origin is Literal:
        kinds = {type(a) for a in get_args(annotation)}
        return kinds.pop() if len(kinds) == 1 else None
    return annotation if annotation in (str, int, float, bool) else None


def _shape(annotation: Any) -> str | None:
    """'names' for list[str], 'mapping' for dict[str, str] (Optional and Annotated unwrapped)."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _shape(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        found = {_shape(a) for a in get_args(annotation) if a is not type(None)}
        return found.pop() if len(found) == 1 else None
    args = get_args(annotation)
    if origin is list and args and _scalar(args[0]) is str:
        return "names"
    if origin is dict and len(args) == 2 and _scalar(args[1]) is str:
        return "mapping"
    return None


def _scalars_of(classes: list[type[BaseModel]]) -> dict[str, type]:
    """Field name -> scalar type over ``classes``; a name must mean one type everywhere."""
    out: dict[str, type] = {}
    for cls in classes:
        for name, info in cls.model_fields.items():
            kind = _scalar(info.annotation)
            if kind is None:
                continue
            if out.setdefault(name, kind) is not kind:
                raise TypeError(f"field {name!r} is {out[name].__name__} in one model and {kind.__name__} in another")
    return out


TOP_CLASSES: list[type[BaseModel]] = [*NODE_CLASSES.values(), ProcessDefinition, SequenceFlow]
# (ids, kinds and flow ends are BPMN's own attributes: never ours)
TOP_SCALARS: dict[str, type] = {k: v for k, v in {**_scalars_of(TOP_CLASSES), **EXTRA_SCALARS}.items()
                                if k not in ("id", "kind", "source", "target")}
_SHAPES = {(name, shape) for cls in TOP_CLASSES for name, info in cls.model_fields.items()
           if (shape := _shape(info.annotation)) is not None}
# list[str] fields: a container of items named after the field; dict[str, str] fields (a call activity's inputs
# and outputs): ``<waooaw:inputMappings>`` / ``<waooaw:outputMappings>`` (a message catch's ``outputs`` is a list)
NAMES: dict[str, str] = {name: camel(name) for name, shape in sorted(_SHAPES) if shape == "names"}
MAPPINGS: dict[str, str] = {name: camel(name).removesuffix("s") + "Mappings"
                            for name, shape in sorted(_SHAPES) if shape == "mapping"}
NESTED_SCALARS: dict[str, dict[str, type]] = {
    **{name: _scalars_of([cls]) for name, cls in NESTED.items()},
    **{name: _scalars_of([cls]) for name, (_, cls) in REPEATED.items()},
}
# element local name -> field name, for the elements directly inside extensionElements
_BY_TAG: dict[str, str] = {camel(n): n for n in [*NESTED, "metadata"]} | {
    tag: n for n, (tag, _) in REPEATED.items()} | {tag: n for n, tag in NAMES.items()}
_MAPPING_TAGS = {tag: n for n, tag in MAPPINGS.items()}
_BY_TAG.update(_MAPPING_TAGS)


# --- writing --------------------------------------------------------------------------------------------------


def _w(local: str) -> str:
    return q(WAOOAW, local)


def _text(value: Any, kind: type, where: str) -> str:
    if value is None:
        raise TypedFieldsError(f"{where} is None: typed fields carry only set values")
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        return repr(float(value))
    return str(value)


def _set_scalars(el: etree._Element, data: dict[str, Any], scalars: dict[str, type], where: str) -> dict[str, Any]:
    """Write the scalar keys of ``data`` as attributes; the other keys are returned."""
    rest: dict[str, Any] = {}
    for key, value in data.items():
        kind = scalars.get(key)
        if kind is None or isinstance(value, dict | list):
            rest[key] = value
        else:
            el.set(camel(key), _text(value, kind, f"{where}.{key}"))
    return rest


def _entry(parent: etree._Element, tag: str, value: Any, key: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, _w(tag))
    if key is not None:
        el.set("key", key)
    if value is None:
        el.set("type", "null")
    elif isinstance(value, bool):
        el.set("type", "boolean")
        el.set("value", "true" if value else "false")
    elif isinstance(value, int):
        el.set("type", "integer")
        el.set("value", str(value))
    elif isinstance(value, float):
        el.set("type", "number")
        el.set("value", repr(value))
    elif isinstance(value, str):
        el.set("type", "string")
        el.set("value", value)
    elif isinstance(value, list | tuple):
        el.set("type", "list")
        for item in value:
            _entry(el, ENTRY, item)
    elif isinstance(value, dict):
        el.set("type", "map")
        for k, item in value.items():
            _entry(el, ENTRY, item, str(k))
    else:
        raise TypedFieldsError(f"a value of type {type(value).__name__} has no typed form: {value!r}")
    return el


def _map(parent: etree._Element, tag: str, value: dict[str, Any]) -> None:
    el = etree.SubElement(parent, _w(tag))
    for k, item in value.items():
        _entry(el, ENTRY, item, str(k))


def _names(parent: etree._Element, tag: str, value: list[Any]) -> None:
    el = etree.SubElement(parent, _w(tag))
    for item in value:
        etree.SubElement(el, _w(ITEM), value=str(item))


def _mapping(parent: etree._Element, tag: str, value: dict[str, Any]) -> None:
    el = etree.SubElement(parent, _w(tag))
    for variable, expression in value.items():
        etree.SubElement(el, _w(MAPPING), variable=str(variable), expression=str(expression))


def _model(parent: etree._Element, tag: str, field: str, data: dict[str, Any]) -> None:
    el = etree.SubElement(parent, _w(tag))
    rest = _set_scalars(el, data, NESTED_SCALARS[field], field)
    for key, value in rest.items():
        if key == "default":
            _entry(el, DEFAULT, value)
        elif key == "values" and isinstance(value, dict):
            for k, item in value.items():
                _entry(el, ENTRY, item, str(k))
        elif key == "choices" and isinstance(value, list):
            _names(el, CHOICES, value)
        else:
            raise TypedFieldsError(f"{field}.{key} has no typed form (value {value!r})")


def write_fields(ext: etree._Element, data: dict[str, Any]) -> None:
    """Append the typed elements for ``data`` (a node's, flow's or process's own fields) to ``ext``.

    Raises :class:`TypedFieldsError` for a field with no typed form (a model field this module does not know
    yet): tests write every model field, so a new one fails there rather than being lost."""
    props = etree.SubElement(ext, _w(PROPERTIES))
    rest = _set_scalars(props, data, TOP_SCALARS, "fields")
    if not props.attrib:
        ext.remove(props)
    for key, value in rest.items():
        if key in NESTED and isinstance(value, dict):
            _model(ext, camel(key), key, value)
        elif key in REPEATED and isinstance(value, list):
            tag = REPEATED[key][0]
            for item in value:
                _model(ext, tag, key, item)
        elif key == "metadata" and isinstance(value, dict):
            _map(ext, "metadata", value)
        elif key in NAMES and isinstance(value, list):
            _names(ext, NAMES[key], value)
        elif key in MAPPINGS and isinstance(value, dict):
            _mapping(ext, MAPPINGS[key], value)
        else:
            raise TypedFieldsError(f"field {key!r} has no typed form (value {value!r})")


def marker(ext: etree._Element) -> None:
    """An empty ``<waooaw:properties/>``: the element's fields are ours even when none is set (so the standard
    and Camunda forms of the same fields, which may be stale, are not read over them)."""
    if not any(c.tag == _w(PROPERTIES) for c in ext):
        ext.insert(0, etree.Element(_w(PROPERTIES)))


# --- reading --------------------------------------------------------------------------------------------------


def _where(el: etree._Element) -> str:
    return f"<waooaw:{etree.QName(el).localname}> (line {el.sourceline})"


_KIND_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def _parse(text: str, kind: type, el: etree._Element, attr: str) -> Any:
    try:
        if kind is bool:
            if text not in ("true", "false"):
                raise ValueError
            return text == "true"
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise TypedFieldsError(f"{_where(el)} {attr}={text!r} is not {_KIND_WORDS[kind]}", el) from None
    return text


def _scalars(el: etree._Element, scalars: dict[str, type]) -> dict[str, Any]:
    by_camel = {camel(name): (name, kind) for name, kind in scalars.items()}
    out: dict[str, Any] = {}
    for attr, text in el.attrib.items():
        if attr.startswith("{"):
            continue
        found = by_camel.get(attr)
        if found is None:
            raise TypedFieldsError(f"{_where(el)} has no attribute {attr!r}", el)
        out[found[0]] = _parse(text, found[1], el, attr)
    return out


def _children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _read_entry(el: etree._Element) -> Any:
    kind = el.get("type", "string")
    text = el.get("value")
    if kind == "null":
        return None
    if kind == "list":
        return [_read_entry(c) for c in _children(el)]
    if kind == "map":
        return _read_map(el)
    if kind not in VALUE_TYPES:
        raise TypedFieldsError(f"{_where(el)} type={kind!r} is not one of {', '.join(VALUE_TYPES)}", el)
    if text is None:
        raise TypedFieldsError(f"{_where(el)} of type {kind} needs a value attribute", el)
    return _parse(text, {"string": str, "integer": int, "number": float, "boolean": bool}[kind], el, "value")


def _read_map(el: etree._Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in _children(el):
        key = child.get("key")
        if key is None:
            raise TypedFieldsError(f"{_where(child)} inside a map needs a key", child)
        out[key] = _read_entry(child)
    return out


def _read_names(el: etree._Element) -> list[str]:
    return [c.get("value", "") for c in _children(el)]


def _read_model(el: etree._Element, field: str) -> dict[str, Any]:
    out = _scalars(el, NESTED_SCALARS[field])
    values: dict[str, Any] = {}
    for child in _children(el):
        local = etree.QName(child).localname
        if local == DEFAULT:
            out["default"] = _read_entry(child)
        elif local == CHOICES:
            out["choices"] = _read_names(child)
        elif local == ENTRY and child.get("key") is not None:
            values[child.get("key")] = _read_entry(child)
        else:
            raise TypedFieldsError(f"{_where(child)} is not expected inside <waooaw:{etree.QName(el).localname}>",
                                  child)
    if values:
        out["values"] = values
    return out


def is_typed(el: etree._Element) -> bool:
    """Is this child of extensionElements one of our typed field elements?"""
    qn = etree.QName(el)
    return qn.namespace == WAOOAW and (qn.localname == PROPERTIES or qn.localname in _BY_TAG)


def read_fields(elements: list[etree._Element]) -> dict[str, Any] | None:
    """The fields dict of the typed elements among ``elements`` (children of one extensionElements), or None
    when there are none. Raises :class:`TypedFieldsError` naming the element, attribute and line."""
    out: dict[str, Any] = {}
    found = False
    for el in elements:
        if not is_typed(el):
            continue
        found = True
        local = etree.QName(el).localname
        if local == PROPERTIES:
            out.update(_scalars(el, TOP_SCALARS))
            continue
        field = _BY_TAG[local]
        if field in REPEATED:
            out.setdefault(field, []).append(_read_model(el, field))
        elif field in NESTED:
            out[field] = _read_model(el, field)
        elif field == "metadata":
            out[field] = _read_map(el)
        elif local in _MAPPING_TAGS:
            out[field] = {c.get("variable", ""): c.get("expression", "") for c in _children(el)}
        else:
            out[field] = _read_names(el)
    return out if found else None


# --- the moddle descriptor --------------------------------------------------------------------------------------

_MODDLE_TYPE = {str: "String", int: "Integer", float: "Real", bool: "Boolean"}


def _attrs(scalars: dict[str, type]) -> list[dict[str, Any]]:
    return [{"name": camel(n), "type": _MODDLE_TYPE[k], "isAttr": True} for n, k in sorted(scalars.items())]


def moddle_descriptor() -> dict[str, Any]:
    """The bpmn-moddle package descriptor for the ``waooaw`` namespace (the canvas registers it with bpmn-js so
    ``saveXML`` keeps our elements): the typed field elements above, the old ``fields`` JSON carrier, and the
    process-level ``ids``, ``labels`` and ``layout`` records."""
    element = {"superClass": ["Element"], "meta": {"allowedIn": ["*"]}}
    value_props = [{"name": "key", "type": "String", "isAttr": True},
                   {"name": "type", "type": "String", "isAttr": True},
                   {"name": "value", "type": "String", "isAttr": True},
                   {"name": "entries", "type": "Entry", "isMany": True}]
    typ: list[dict[str, Any]] = [
        {"name": "Properties", **element, "properties": _attrs(TOP_SCALARS)},
        {"name": "Entry", "properties": value_props},
        {"name": "Default", "superClass": ["Entry"]},
        {"name": "Item", "properties": [{"name": "value", "type": "String", "isAttr": True}]},
        {"name": "Mapping", "properties": [{"name": "variable", "type": "String", "isAttr": True},
                                           {"name": "expression", "type": "String", "isAttr": True}]},
        {"name": "Choices", "properties": [{"name": "items", "type": "Item", "isMany": True}]},
        {"name": "Metadata", **element, "properties": [{"name": "entries", "type": "Entry", "isMany": True}]},
    ]
    for field, cls in NESTED.items():
        extra = [{"name": "entries", "type": "Entry", "isMany": True}] if "values" in cls.model_fields else []
        typ.append({"name": _type_name(camel(field)), **element,
                    "properties": _attrs(NESTED_SCALARS[field]) + extra})
    for field, (tag, cls) in REPEATED.items():
        extra: list[dict[str, Any]] = []
        if "choices" in cls.model_fields:
            extra.append({"name": "choices", "type": "Choices"})
        if "default" in cls.model_fields:
            extra.append({"name": "default", "type": "Default"})
        typ.append({"name": _type_name(tag), **element, "properties": _attrs(NESTED_SCALARS[field]) + extra})
    for tag in NAMES.values():
        typ.append({"name": _type_name(tag), **element,
                    "properties": [{"name": "items", "type": "Item", "isMany": True}]})
    for tag in MAPPINGS.values():
        typ.append({"name": _type_name(tag), **element,
                    "properties": [{"name": "mappings", "type": "Mapping", "isMany": True}]})
    typ += [
        {"name": "Fields", **element, "properties": [{"name": "body", "type": "String", "isBody": True}]},
        {"name": "Ids", "superClass": ["Element"], "meta": {"allowedIn": ["bpmn:Process"]},
         "properties": [{"name": "entries", "type": "Id", "isMany": True}]},
        {"name": "Id", "properties": [{"name": "xml", "type": "String", "isAttr": True},
                                      {"name": "model", "type": "String", "isAttr": True}]},
        {"name": "Labels", "superClass": ["Element"], "meta": {"allowedIn": ["bpmn:Process"]},
         "properties": [{"name": "entries", "type": "Label", "isMany": True}]},
        {"name": "Label", "properties": [{"name": "element", "type": "String", "isAttr": True},
                                         {"name": "text", "type": "String", "isAttr": True}]},
        {"name": "Layout", "superClass": ["Element"], "meta": {"allowedIn": ["bpmn:Process"]},
         "properties": [{"name": "computed", "type": "String", "isAttr": True},
                        {"name": "generated", "type": "String", "isAttr": True},
                        {"name": "digest", "type": "String", "isAttr": True}]},
    ]
    return {"name": "waooaw", "uri": WAOOAW, "prefix": "waooaw", "xml": {"tagAlias": "lowerCase"},
            "associations": [], "types": typ}


def _type_name(tag: str) -> str:
    return tag[:1].upper() + tag[1:]


def moddle_json() -> str:
    return json.dumps(moddle_descriptor(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(moddle_json(), end="")


# --- the canvas's property panel ---------------------------------------------------------------------------------
# The Designer's panel edits the model and sends the canvas our elements as moddle trees, which bpmn-js builds
# with ``moddle.create`` in one undoable command (parsing XML in the browser is asynchronous; commands are not):
# ``{"type": "waooaw:FormField", "props": {"name": "ok", "required": true, "default": {"type": ...}}}``.


def _descriptor_types() -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in moddle_descriptor()["types"]}


def _child_property(types_: dict[str, dict[str, Any]], parent: str, child: str) -> dict[str, Any]:
    lineage = {child, *types_[child].get("superClass", [])}
    for prop in types_[parent].get("properties", []):
        if prop["type"] in lineage and not prop.get("isAttr"):
            return prop
    raise TypedFieldsError(f"<waooaw:{child}> has no place inside <waooaw:{parent}>")


_FROM_MODDLE = {"Boolean": lambda t: t == "true", "Integer": int, "Real": float, "String": str}


def moddle_tree(el: etree._Element) -> dict[str, Any]:
    """One of our elements as ``{"type": "waooaw:Name", "props": {...}}`` for ``moddle.create`` (attributes typed
    as the descriptor declares them, children under the property that holds them)."""
    types_ = _descriptor_types()
    name = _type_name(etree.QName(el).localname)
    attr_types = {p["name"]: p["type"] for p in types_[name].get("properties", []) if p.get("isAttr")}
    props: dict[str, Any] = {k: _FROM_MODDLE[attr_types.get(k, "String")](v) for k, v in el.attrib.items()}
    for child in _children(el):
        prop = _child_property(types_, name, _type_name(etree.QName(child).localname))
        tree = moddle_tree(child)
        if prop.get("isMany"):
            props.setdefault(prop["name"], []).append(tree)
        else:
            props[prop["name"]] = tree
    return {"type": f"waooaw:{name}", "props": props}


def from_moddle_tree(tree: dict[str, Any]) -> etree._Element:
    """The element a :func:`moddle_tree` stands for (what bpmn-js writes for it)."""
    name = tree["type"].split(":", 1)[1]
    el = etree.Element(_w(name[:1].lower() + name[1:]))
    for key, value in tree["props"].items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                el.append(from_moddle_tree(item))
            else:
                el.set(key, _text(item, type(item), key))
    return el


def panel_trees(data: dict[str, Any], marked: bool = False) -> list[dict[str, Any]]:
    """The moddle trees of ``data`` (an element's own fields); ``marked``: with the ``<waooaw:properties/>``
    marker even when empty (user tasks and the process)."""
    ext = etree.Element("extensionElements")
    write_fields(ext, data)
    if marked:
        marker(ext)
    return [moddle_tree(child) for child in ext]


def fields_of_trees(trees: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields a list of moddle trees carries (the inverse of :func:`panel_trees`)."""
    return read_fields([from_moddle_tree(t) for t in trees]) or {}
