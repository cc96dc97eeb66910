"""Draw a process definition as a BPMN-like Graphviz graph, with overlays for a running or simulated process.

``to_dot`` only builds DOT text (no binary: ``st.graphviz_chart`` lays it out in the browser); ``to_svg`` and
``render`` run Graphviz's ``dot``. Shapes follow BPMN where Graphviz has one: a thin circle starts, a thick one
ends, a double circle is an intermediate or boundary event, a rounded box is an activity, a diamond a gateway
(× exclusive, + parallel, ○ inclusive, ⬠ event-based). A sub-process is a cluster around its contents; flows
into and out of it are drawn to its border (``compound=true`` with ``lhead``/``ltail``) from a representative
inner node, since Graphviz edges must end at nodes.

Every Graphviz node is named by its node id and carries it as its SVG ``id`` (flows carry theirs too), so tests,
the app and a browser can find a node in the picture.

Overlays: ``highlight`` (node ids holding tokens: a thick coloured border), ``counts`` (a badge per node, e.g.
how many runs passed), ``heat`` (0..1 per node, e.g. relative average wait: a fill colour).
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import graphviz

from engine.errors import WaooawError
from engine.model.definition import ProcessDefinition
from engine.model.nodes import END_KINDS, START_KINDS, BoundaryEvent, Node, SequenceFlow, SubProcess

FONT = "Helvetica,Arial,DejaVu Sans,sans-serif"
HIGHLIGHT = "#d6336c"  # a token is here
BADGE = "#1c7ed6"  # count badges
MISSING = "#e03131"  # a flow names a node that does not exist

GATEWAY_MARKS = {"exclusive_gateway": "×", "parallel_gateway": "+", "inclusive_gateway": "○", "event_gateway": "⬠"}
# Every mark is a character of DejaVu Sans (Graphviz's and most Linux browsers' fallback font), so no machine
# draws an empty box for it: no emoji (👤, ⏱ and ⏪ were drawn as boxes where no emoji font is installed).
TIMER = "◷"
EVENT_MARKS = {
    "timer_start": TIMER, "message_start": "✉", "terminate_end": "●", "error_end": "⚡",
    "timer_catch": TIMER, "message_catch": "✉", "message_throw": "✉", "compensation_throw": "◀◀",
    "boundary_timer": TIMER, "boundary_error": "⚡", "boundary_message": "✉", "link_throw": "➜", "link_catch": "➜",
    "conditional_catch": "≣", "signal_start": "△", "signal_catch": "△", "signal_throw": "▲", "signal_end": "▲",
    "boundary_signal": "△", "escalation_throw": "⇑", "escalation_end": "⇑", "boundary_escalation": "⇑",
    "cancel_end": "⊗", "boundary_cancel": "⊗",
}
# BPMN draws these markers filled
THROW_KINDS = frozenset({"message_throw", "compensation_throw", "error_end", "link_throw", "signal_throw", "signal_end",
                         "escalation_throw", "escalation_end", "cancel_end"})
TASK_MARKS = {"service_task": "⚙", "user_task": "♙", "task": "", "sub_process": "⊞", "script_task": "≡",
              "ad_hoc_sub_process": "~"}
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}


class RenderError(WaooawError):
    """The picture could not be made (no ``dot`` binary, unknown output type)."""


def to_dot(definition: ProcessDefinition, highlight: Iterable[str] = (), counts: Mapping[str, int] | None = None,
           heat: Mapping[str, float] | None = None) -> str:
    """The DOT source of the definition with the overlays; needs no Graphviz binary."""
    return _Drawing(definition, set(highlight), dict(counts or {}), dict(heat or {})).graph().source


def to_svg(definition: ProcessDefinition, **overlays: Any) -> str:
    """The definition as SVG text (runs ``dot``); overlays as for :func:`to_dot`."""
    return _pipe(to_dot(definition, **overlays), "svg").decode("utf-8")


def render(definition: ProcessDefinition, path: str | Path, **overlays: Any) -> Path:
    """Write the picture; the suffix picks the format: .svg, .png, .pdf (need ``dot``) or .dot/.gv (DOT text)."""
    path = Path(path)
    suffix = path.suffix.lower()
    source = to_dot(definition, **overlays)
    if suffix in (".dot", ".gv"):
        path.write_text(source, encoding="utf-8")
    elif suffix in FORMATS:
        path.write_bytes(_pipe(source, FORMATS[suffix]))
    else:
        raise RenderError(f"cannot render to {path.name!r}: use .svg, .png, .pdf or .dot")
    return path


def _pipe(source: str, fmt: str) -> bytes:
    try:
        return graphviz.Source(source).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise RenderError(
            "Graphviz's 'dot' program is not installed, so pictures cannot be rendered to " + fmt.upper()
            + ": install it with 'apt-get install graphviz' (or your system's package), or render to .dot"
        ) from None
    except graphviz.CalledProcessError as exc:  # a bug here, not in the user's file: say what dot said
        stderr = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else str(exc.stderr)
        raise RenderError(f"dot failed: {stderr.strip()}") from None


# --- drawing ------------------------------------------------------------------------------------------


def _text(*lines: str) -> str:
    """A plain (non-HTML) DOT label from lines, backslashes kept literal."""
    return graphviz.nohtml("\\n".join(graphviz.escape(line) for line in lines))


def _wrap(text: str, width: int = 18) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=True) or [text]


def _heat_colour(value: float) -> tuple[str, str]:
    """Fill and matching font colour for a heat value (clamped to 0..1), light yellow to dark red."""
    from matplotlib import colormaps, colors  # only when heat is asked for: matplotlib is slow to import

    v = min(max(float(value), 0.0), 1.0)
    fill = colors.to_hex(colormaps["YlOrRd"](0.05 + 0.9 * v))
    return fill, ("white" if v > 0.6 else "black")


class _Drawing:
    def __init__(self, definition: ProcessDefinition, highlight: set[str], counts: dict[str, int],
                 heat: dict[str, float]) -> None:
        self.d = definition
        self.highlight = highlight
        self.counts = counts
        self.heat = heat

    def graph(self) -> graphviz.Digraph:
        g = graphviz.Digraph(name=self.d.id, strict=False)
        g.attr(rankdir="LR", compound="true", nodesep="0.35", ranksep="0.45", fontname=FONT,
               label=self.d.label, labelloc="t", fontsize="16", id=f"process_{self.d.id}")
        g.attr("node", fontname=FONT, fontsize="11")
        g.attr("edge", fontname=FONT, fontsize="9", color="#444444", arrowsize="0.7")
        self._scope(g, self.d.nodes, self.d.flows)
        self._missing(g)
        return g

    # --- scopes

    def _scope(self, g: graphviz.Digraph, nodes: list[Node], flows: list[SequenceFlow]) -> None:
        for node in nodes:
            if isinstance(node, SubProcess) and node.nodes:
                self._cluster(g, node)
            elif isinstance(node, BoundaryEvent):
                self._boundary(g, node)
            else:
                self._node(g, node)
        for flow in flows:
            self._flow(g, flow)

    def _cluster(self, g: graphviz.Digraph, sub: SubProcess) -> None:
        with g.subgraph(name=f"cluster_{sub.id}") as c:
            label = f"{TASK_MARKS.get(sub.kind, TASK_MARKS['sub_process'])} {sub.label}"
            if sub.id in self.counts:
                label += f"  [{self.counts[sub.id]}]"
            c.attr(label=label, id=sub.id, style="rounded", color="#333333", labeljust="l", fontsize="11",
                   tooltip=self._tooltip(sub))
            if sub.id in self.heat:
                fill, font = _heat_colour(self.heat[sub.id])
                c.attr(style="rounded,filled", fillcolor=fill, fontcolor=font)
            if sub.id in self.highlight:
                c.attr(color=HIGHLIGHT, penwidth="3")
            if sub.transaction:  # BPMN draws a transaction with a double border: a second cluster just inside
                with c.subgraph(name=f"cluster_{sub.id}__transaction") as inner:
                    inner.attr(label="", style="rounded", color="#333333", penwidth="1", margin="4",
                               tooltip=self._tooltip(sub))
                    self._scope(inner, sub.nodes, sub.flows)
                return
            self._scope(c, sub.nodes, sub.flows)

    # --- nodes

    def _node(self, g: graphviz.Digraph, node: Node) -> None:
        attrs: dict[str, str] = {"id": node.id, "tooltip": self._tooltip(node)}
        kind = node.kind  # type: ignore[attr-defined]
        if node.is_gateway:
            attrs.update(shape="diamond", width="0.5", height="0.5", fixedsize="true", fontsize="18",
                         label=GATEWAY_MARKS.get(kind, "?"), style="filled", fillcolor="white")
            self._outside_label(attrs, node)
        elif node.is_event:
            self._event(attrs, node, kind)
        else:
            self._activity(attrs, node, kind)
        self._overlay(attrs, node.id)
        g.node(node.id, **attrs)

    def _event(self, attrs: dict[str, str], node: Node, kind: str) -> None:
        mark = EVENT_MARKS.get(kind, "")
        shape = "circle"
        penwidth = "1"
        if kind in END_KINDS:
            penwidth = "3"
        elif kind not in START_KINDS:
            shape = "doublecircle"
        attrs.update(shape=shape, penwidth=penwidth, label=mark, width="0.4", height="0.4", fixedsize="true",
                     fontsize="13", style="filled", fillcolor="white")
        if kind in THROW_KINDS:  # a filled marker (BPMN's throwing events): dark disc, white sign
            attrs.update(fillcolor="#343a40", fontcolor="white")
        if isinstance(node, BoundaryEvent):
            attrs.update(width="0.3", height="0.3", fontsize="10")
            if not node.interrupting:
                attrs["style"] = "filled,dashed"
        self._outside_label(attrs, node)

    def _activity(self, attrs: dict[str, str], node: Node, kind: str) -> None:
        mark = TASK_MARKS.get(kind, "")
        text = node.label  # its name, a user task's title, else its id in words
        lines = "<BR/>".join(html.escape(line) for line in _wrap(text))
        count = self.counts.get(node.id)
        badge = "<TD></TD>"
        if count is not None:  # a nested table keeps the badge as small as its number
            badge = (f'<TD ALIGN="RIGHT"><TABLE BORDER="0" CELLSPACING="0" CELLPADDING="1"><TR><TD BGCOLOR="{BADGE}">'
                     f'<FONT COLOR="white" POINT-SIZE="9"> {count} </FONT></TD></TR></TABLE></TD>')
        marker = f'<FONT POINT-SIZE="12">{html.escape(mark)}</FONT>' if mark else " "  # an empty FONT is a syntax error
        attrs["label"] = (
            '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
            f'<TR><TD ALIGN="LEFT">{marker}</TD>{badge}</TR>'
            f'<TR><TD COLSPAN="2">{lines}</TD></TR></TABLE>>'
        )
        attrs.update(shape="box", style="rounded,filled", fillcolor="white", margin="0.08,0.04", height="0.55",
                     width="1.1")
        if getattr(node, "compensation", None):
            attrs["tooltip"] += "\\n(has a compensation handler)"

    def _outside_label(self, attrs: dict[str, str], node: Node) -> None:
        """Events and gateways carry their name (and count badge) beside the shape, as in BPMN."""
        rows = []
        if node.id in self.counts:  # the token badge on a row of its own, above the name: never over it
            count = str(self.counts[node.id])
            rows.append(f'<TD FIXEDSIZE="TRUE" WIDTH="{8 + 7 * len(count)}" HEIGHT="13" BGCOLOR="{BADGE}">'
                        f'<FONT COLOR="white" POINT-SIZE="9"><B>{count}</B></FONT></TD>')
        # an end event is labelled even without a name (its id in words): which end an instance reached is its
        # outcome
        ends = node.kind == "end" or node.kind.endswith("_end")  # type: ignore[attr-defined]
        name = node.name or (node.label if ends else None)
        if name:
            rows.append("<TD>" + "<BR/>".join(html.escape(line) for line in _wrap(name, 16)) + "</TD>")
        if not rows:
            return
        attrs["xlabel"] = ('<<FONT POINT-SIZE="10"><TABLE BORDER="0" CELLBORDER="0" CELLSPACING="1" CELLPADDING="0">'
                           + "".join(f"<TR>{row}</TR>" for row in rows) + "</TABLE></FONT>>")

    def _boundary(self, g: graphviz.Digraph, event: BoundaryEvent) -> None:
        """A small double circle below its activity, tied to it by a dotted line."""
        self._node(g, event)
        activity = self.d.index.nodes.get(event.attached_to)
        edge = {"style": "dotted", "arrowhead": "none", "color": "#868e96", "weight": "5",
                "id": f"{event.id}__attached"}
        if isinstance(activity, SubProcess) and activity.nodes:
            g.edge(self._exit_of(activity), event.id, ltail=f"cluster_{activity.id}", **edge)
        elif activity is not None:
            with g.subgraph() as same:  # on the activity's rank: below it in a left-to-right layout
                same.attr(rank="same")
                same.node(activity.id)
                same.node(event.id)
            g.edge(activity.id, event.id, **edge)
        # an unattached boundary event stays alone: validation reports it

    def _overlay(self, attrs: dict[str, str], node_id: str) -> None:
        if node_id in self.heat:
            fill, font = _heat_colour(self.heat[node_id])
            attrs.update(fillcolor=fill, fontcolor=font)
        if node_id in self.highlight:
            attrs.update(color=HIGHLIGHT, penwidth="4")

    def _tooltip(self, node: Node) -> str:
        kind = node.kind  # type: ignore[attr-defined]
        lines = [f"{node.id} ({kind})"]
        for field in ("agent", "assignee", "sla", "message", "error_code", "attached_to"):
            value = getattr(node, field, None)
            if value:
                lines.append(f"{field}: {value}")
        timer = getattr(node, "timer", None)
        if timer is not None:
            lines.append(f"timer: {timer.duration or timer.date or timer.cycle}")
        if node.id in self.counts:
            lines.append(f"count: {self.counts[node.id]}")
        if node.id in self.heat:
            lines.append(f"heat: {self.heat[node.id]:.2f}")
        return _text(*lines)

    # --- flows

    def _flow(self, g: graphviz.Digraph, flow: SequenceFlow) -> None:
        attrs: dict[str, str] = {"id": flow.id}
        parts = [flow.name] if flow.name else []
        if flow.condition:
            parts.append(flow.condition)
        source_node = self.d.index.nodes.get(flow.source)
        if getattr(source_node, "default", None) == flow.id:
            parts.append("default")
            # BPMN's slash across the start of a default flow, as a tail label (no arrow shape draws it)
            attrs.update(taillabel="/", labeldistance="1.6", labelangle="0", labelfontsize="14")
        if parts:
            attrs["label"] = _text(*[line for part in parts for line in _wrap(part, 24)])
        tail, head = flow.source, flow.target
        source, target = self.d.index.nodes.get(tail), self.d.index.nodes.get(head)
        if isinstance(source, SubProcess) and source.nodes:
            attrs["ltail"] = f"cluster_{source.id}"
            tail = self._exit_of(source)
        if isinstance(target, SubProcess) and target.nodes:
            attrs["lhead"] = f"cluster_{target.id}"
            head = self._entry_of(target)
        g.edge(tail, head, **attrs)

    def _entry_of(self, sub: SubProcess) -> str:
        """The inner node an arrow into the sub-process is drawn to (its start, else its first node)."""
        starts = [n for n in sub.nodes if n.kind in START_KINDS]  # type: ignore[attr-defined]
        first = (starts or sub.nodes)[0]
        return self._entry_of(first) if isinstance(first, SubProcess) and first.nodes else first.id

    def _exit_of(self, sub: SubProcess) -> str:
        """The inner node an arrow out of the sub-process is drawn from (an end, else its last node)."""
        ends = [n for n in sub.nodes if n.kind in END_KINDS]  # type: ignore[attr-defined]
        last = (ends or sub.nodes)[-1]
        return self._exit_of(last) if isinstance(last, SubProcess) and last.nodes else last.id

    def _missing(self, g: graphviz.Digraph) -> None:
        """Flows to or from ids that are not nodes: draw them red so the designer shows the mistake."""
        known = self.d.index.nodes
        missing = sorted({end for f in self.d.all_flows() for end in (f.source, f.target) if end not in known})
        for node_id in missing:
            g.node(node_id, label=_text(f"? {node_id}"), id=node_id, shape="box", style="dashed",
                   color=MISSING, fontcolor=MISSING, tooltip=f"{node_id}: no such node")
