"""The BPMN canvas: bpmn.io's modeler (bpmn-js, MIT with the bpmn.io watermark kept visible) as a Streamlit
component, served from the committed bundle in ``static/`` (no npm, no network).

    value = bpmn_canvas(session.args(), key="designer_canvas")

Arguments and the value it returns are described in ``frontend/src/index.js``; :class:`app.designer.DesignerSession`
builds the arguments and takes the value.
"""

from __future__ import annotations

from typing import Any

import streamlit.components.v1 as components

from app.components.bpmn_canvas.bundle import STATIC

_component = components.declare_component("bpmn_canvas", path=str(STATIC))


def bpmn_canvas(args: dict[str, Any], *, height: int = 620, key: str) -> dict[str, Any] | None:
    """Draw the canvas; returns the last value it posted ({seq, revision, ack, xml, selected}) or None."""
    return _component(**args, height=height, keepView=True, key=key, default=None)
