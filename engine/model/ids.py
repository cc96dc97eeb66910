"""The one id rule: element ids are XML NCNames, as BPMN 2.0 (xs:ID) defines them.

An NCName starts with a letter (of any script: ``Überprüfung``, ``审批``) or ``_`` and continues with letters,
digits, ``.``, ``-``, ``_``, combining marks and a few connectors; it never contains ``:`` or a space. The model,
the builder, the BPMN importer and the exporter all use this rule, so an id that loads also exports, and a file
bpmn.io or Camunda writes (they accept Unicode ids) imports. Source: XML 1.0 (5th ed.) §2.3 productions [4] and
[4a], Namespaces in XML 1.0 §3 [4] (NCName = Name without ':').

Variable and form-field names are a different, narrower rule (identifiers an expression can read).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

# XML 1.0 NameStartChar without ':' and NameChar, as character classes (real characters, not escapes, so the
# same pattern works in pydantic's Rust regex engine and in Python's re).
_START = ("A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d\u2070-\u218f"
          "\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff")
_REST = _START + "\\-.0-9\u00b7\u0300-\u036f\u203f-\u2040"

NCNAME_PATTERN = f"^[{_START}][{_REST}]*$"
_NCNAME = re.compile(NCNAME_PATTERN)


def is_ncname(text: str) -> bool:
    """Is ``text`` a valid BPMN/XML id (an NCName)?"""
    return isinstance(text, str) and bool(_NCNAME.match(text))


def to_ncname(text: str, fallback: str = "_") -> str:
    """``text`` made into an NCName: characters an NCName cannot hold become ``_``; a leading digit, ``-`` or ``.``
    gets a ``_`` in front. Letters of any script are kept (``prüfen`` stays ``prüfen``)."""
    chars = [c if _NCNAME.match(f"a{c}") else "_" for c in text] or list(fallback)
    out = "".join(chars)
    return out if _NCNAME.match(out) else f"_{out}"


def check_id(value: str) -> str:
    """Pydantic validator: the value is an NCName of at most ``max_id_length`` characters (``engine.limits``),
    else a ValueError that says what an id may contain."""
    too_long = _too_long(value, "an id")
    if too_long:
        raise ValueError(too_long)
    if not is_ncname(value):
        raise ValueError(f"{value!r} is not a valid id: an id starts with a letter (any script) or '_' and goes on "
                         f"with letters, digits, '_', '-' or '.', without spaces or ':' (an XML name, as BPMN "
                         f"requires); e.g. {to_ncname(value)!r}")
    return value


def _too_long(value: str, what: str) -> str | None:
    from engine.limits import LimitExceeded, current

    if len(value) <= current().max_id_length:
        return None
    return str(LimitExceeded("max_id_length", f"{what} has {len(value):,} characters"))


def check_variable_name(value: str) -> str:
    """Pydantic validator of a variable or form-field name (an identifier, by the pattern of ``VariableName``):
    at most ``max_id_length`` characters."""
    too_long = _too_long(value, "a variable name")
    if too_long:
        raise ValueError(too_long)
    return value


def check_name(value: str) -> str:
    """Pydantic validator of a message, signal, error or escalation name: the rule of keys
    (``engine.limits.check_key``: printable text, at most ``max_key_length`` characters), so what a definition
    names, ``correlate`` accepts and both databases store."""
    from engine.errors import WaooawError
    from engine.limits import check_key

    try:
        return check_key(value, "a name")
    except WaooawError as exc:
        raise ValueError(str(exc)) from None


# The ids bpmn-js (and Camunda Modeler) give a new element: a type word, "_" and seven random characters.
MODELER_ID = re.compile(r"^(Activity|Gateway|Event|StartEvent|EndEvent|Flow|Task|SubProcess|DataObjectReference|"
                        r"DataStoreReference|Participant|Lane|TextAnnotation|Association)_[0-9a-z]{7}$")


def is_modeler_id(ident: str) -> bool:
    """Is ``ident`` an id a modeler made up (``Activity_1wkter0``), which says nothing to a reader?"""
    return bool(MODELER_ID.match(ident))


def words(text: str) -> str:
    """An identifier in words: the last part of ``module:function`` or ``a.b``; ``_``/``-``/camelCase -> spaces,
    the first letter capitalised (``issue_created`` -> "Issue created", ``rollbackValidation`` -> "Rollback
    validation")."""
    tail = re.split(r"[:.]", text)[-1] or text
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", tail)
    spaced = re.sub(r"[_\-\s]+", " ", spaced).strip()
    return (spaced[:1].upper() + spaced[1:].lower()) if spaced else text


def kind_words(kind: str) -> str:
    """A node kind in words, as a label: ``exclusive_gateway`` -> "Exclusive gateway", ``end`` -> "End event"."""
    return words(kind) + (" event" if kind in ("start", "end") else "")


ElementId = Annotated[str, AfterValidator(check_id)]
VariableName = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_]\w*$"), AfterValidator(check_variable_name)]
Name = Annotated[str, AfterValidator(check_name)]
