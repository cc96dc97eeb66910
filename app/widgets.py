"""Widgets two pages share: the start form (only the process's inputs), a human task's form, an action runner."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

from app.chrome import PageContext, flash
from app.engine_session import field_label, start_inputs, start_values, written_by_nodes
from engine.errors import WaooawError
from engine.model import ProcessDefinition


def act(ctx: PageContext, message: str, action: Callable[..., Any], *args: Any, forget: tuple[str, ...] = (),
        **kwargs: Any) -> Any:
    """Do an engine action, run the due jobs, and rerun showing ``message`` (after dropping the session keys
    ``forget``). A refused action shows its error and the page stays as it was (the engine wrote nothing)."""
    try:
        result = action(*args, **kwargs)
    except (WaooawError, ValueError) as exc:  # EngineError, FormError, DefinitionError, a bad JSON field
        st.error(str(exc), icon=":material/error:")
        return None
    for key in forget:
        st.session_state.pop(key, None)
    ctx.runtime.drive()
    flash(message)
    st.rerun()
    return result


def numbered(values: dict[str, Any], n: int) -> dict[str, Any]:
    """``values`` with ``{n}`` in text values replaced by ``n`` (starting many instances that differ)."""
    return {k: v.replace("{n}", str(n)) if isinstance(v, str) else v for k, v in values.items()}


def business_keys(key: str | None, n: int) -> list[str | None]:
    """The business keys of ``n`` instances started at once: ``{n}`` in ``key`` becomes each one's number
    (``EXP-{n}`` -> EXP-1, EXP-2, …); a key without it gets -1, -2, … when there are several; None stays None."""
    if not key:
        return [None] * n
    if "{n}" in key:
        return [key.replace("{n}", str(i)) for i in range(1, n + 1)]
    return [key] if n == 1 else [f"{key}-{i}" for i in range(1, n + 1)]


def start_form(ctx: PageContext, definition: ProcessDefinition, prefix: str) -> None:
    """A form asking for the variables ``definition`` takes as input; Start runs it as the acting user."""
    name = definition.id
    inputs = start_inputs(definition)
    written = written_by_nodes(definition)
    with st.form(f"{prefix}_start:{name}"):
        raw: dict[str, Any] = {}
        for decl in inputs:
            key, label = f"{prefix}_var:{name}:{decl.name}", decl.name + (" *" if decl.required else "")
            help_ = f"{decl.type}" + (f": {decl.description}" if decl.description else "") + (
                "" if decl.name in written else " (no task's form or agent sets it: give it here)")
            if decl.type in ("integer", "number"):
                raw[decl.name] = st.number_input(label, value=None, step=1 if decl.type == "integer" else None,
                                                 key=key, help=help_)
            elif decl.type == "boolean":  # a radio can stay unset: the process decides, not the start form
                raw[decl.name] = st.radio(label, [True, False], index=None, horizontal=True, key=key, help=help_,
                                          format_func=lambda v: "yes" if v else "no")
            else:
                raw[decl.name] = st.text_input(label, key=key, help=help_ + (
                    " (JSON)" if decl.type in ("object", "array") else ""))
        if not inputs:
            st.caption("This process takes no input variables.")
        cols = st.columns([3, 1])
        business_key = cols[0].text_input("Business key (optional)", key=f"{prefix}_bkey:{name}")
        count = cols[1].number_input("Instances", 1, 1000, 1, key=f"{prefix}_count:{name}",
                                     help="Start this many at once: {n} in the key or a text value becomes each "
                                          "instance's number (EXP-{n}, lead{n}@example.com); a key without {n} gets "
                                          "-1, -2, ….")
        if st.form_submit_button("Start", type="primary", key=f"{prefix}_start_button:{name}",
                                 icon=":material/play_arrow:"):
            def start() -> str:
                values, key, n = start_values(definition, raw), business_key.strip() or None, int(count)
                keys = business_keys(key, n)
                batch = [numbered(values, i) for i in range(1, n + 1)]
                started = ctx.engine.start_many(name, batch, keys, actor=ctx.user)  # all or none
                st.session_state["instance_id"] = st.session_state["instance_pick"] = started[-1]
                st.session_state["flash_instance"] = started[-1]  # the success message links to it
                return started[-1]
            act(ctx, f"Started {name}." if count == 1 else f"Started {int(count)} instances of {name}.", start)


def task_form_fields(task: Mapping[str, Any], key_prefix: str) -> dict[str, Any]:
    """The widgets of a human task's form, inside an open ``st.form``; their values by field name."""
    values: dict[str, Any] = {}
    task_id = task["id"]
    for field in task["form"]:
        key, label, kind = f"{key_prefix}:{task_id}:{field['name']}", field_label(field), field["type"]
        default = field.get("default")
        if kind == "boolean":
            values[field["name"]] = st.radio(label, [True, False], key=key, horizontal=True,
                                             index=None if default is None else [True, False].index(default),
                                             format_func=lambda v: "yes" if v else "no")
        elif kind in ("integer", "number"):
            values[field["name"]] = st.number_input(label, value=default, key=key,
                                                    step=1 if kind == "integer" else None)
        elif kind == "enum":
            choices = field.get("choices") or []
            values[field["name"]] = st.selectbox(label, choices, key=key, index=choices.index(default)
                                                 if default in choices else None)
        elif kind == "date":
            values[field["name"]] = st.date_input(label, value=default, key=key)
        elif kind == "text":
            values[field["name"]] = st.text_area(label, value=default or "", key=key)
        else:
            values[field["name"]] = st.text_input(label, value=default or "", key=key)
    return values

