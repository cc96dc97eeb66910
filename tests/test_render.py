"""Rendering: every design draws, every node id is findable in the SVG, shapes follow BPMN, overlays show."""

from __future__ import annotations

import re
import shutil

import graphviz
import pytest

import designs
from engine.errors import WaooawError
from engine.model import ProcessBuilder, ProcessDefinition, from_dict
from engine.render import RenderError, render, to_dot, to_svg

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")


def svg_ids(svg: str) -> set[str]:
    return set(re.findall(r'\sid="([^"]+)"', svg))


def dot_node(dot: str, node_id: str) -> str:
    """The attribute list of one node statement in DOT text."""
    match = re.search(rf"^\s*\"?{re.escape(node_id)}\"? \[(.*)\]$", dot, re.M)
    assert match, f"no node statement for {node_id!r} in:\n{dot}"
    return match.group(1)


def sub_process_design() -> ProcessDefinition:
    b = ProcessBuilder("subdemo", name="Sub demo", variables={"ok": bool})
    c = b.start().sub_process(
        "sp", lambda s: s.start("inner_start").service("step1", agent="a").user("step2", title="Check").end("inner_end")
    )
    c.on_error(id="sp_err").service("fix", agent="a").end("fixed")
    gate = c.exclusive("gw")
    gate.when("ok").task("plain").end("e1")
    gate.otherwise().end("e2")
    return b.build()


@needs_dot
@pytest.mark.parametrize("name", designs.names())
def test_every_design_renders_with_every_node_and_flow_id(name: str) -> None:
    definition = designs.load_design(name)
    svg = to_svg(definition)
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    ids = svg_ids(svg)
    assert {n.id for n in definition.all_nodes()} <= ids
    assert {f.id for f in definition.all_flows()} <= ids


@pytest.mark.parametrize("name", designs.names())
def test_dot_names_every_node_and_draws_every_flow(name: str) -> None:
    definition = designs.load_design(name)
    dot = to_dot(definition)
    for node in definition.all_nodes():
        if node.kind != "sub_process" or not node.nodes:
            dot_node(dot, node.id)
    assert dot.count(" -> ") >= len(definition.all_flows())


def test_shapes_follow_bpmn() -> None:
    definition = designs.load_design("marketing_campaign")
    dot = to_dot(definition)
    by_kind = {n.kind: n.id for n in definition.all_nodes()}
    start = dot_node(dot, by_kind["start"])
    assert "shape=circle" in start and "penwidth=1" in start
    end = dot_node(dot, by_kind["end"])
    assert "shape=circle" in end and "penwidth=3" in end
    assert "shape=diamond" in dot_node(dot, by_kind["parallel_gateway"])
    assert "label=\"+\"" in dot_node(dot, by_kind["parallel_gateway"])
    assert "label=\"×\"" in dot_node(dot, by_kind["exclusive_gateway"])
    service = dot_node(dot, by_kind["service_task"])
    assert "shape=box" in service and "rounded" in service and "⚙" in service
    assert "♙" in dot_node(dot, by_kind["user_task"])  # DejaVu Sans has it: no emoji font needed


def test_events_gateways_and_boundaries() -> None:
    definition = designs.load_design("incident_response")
    dot = to_dot(definition)
    kinds = {n.id: n.kind for n in definition.all_nodes()}
    for node_id, kind in kinds.items():
        attrs = dot_node(dot, node_id)
        if kind in ("timer_catch", "boundary_timer"):
            assert "shape=doublecircle" in attrs and "◷" in attrs
        if kind == "message_catch":
            assert "shape=doublecircle" in attrs and "✉" in attrs
        if kind == "event_gateway":
            assert "⬠" in attrs
    reminder = next(n for n in definition.all_nodes() if n.kind == "boundary_timer" and not n.interrupting)
    assert "dashed" in dot_node(dot, reminder.id)
    # each boundary event is tied to its activity by a dotted, arrowless line
    for node in definition.all_nodes():
        if node.kind.startswith("boundary_"):
            edge = re.search(rf"{node.attached_to} -> {node.id} \[(.*)\]", dot)
            assert edge and "style=dotted" in edge.group(1) and "arrowhead=none" in edge.group(1)


def test_conditions_and_default_flow_are_labelled() -> None:
    definition = designs.load_design("customer_onboarding")
    dot = to_dot(definition)
    gateway = next(n for n in definition.all_nodes() if n.kind == "exclusive_gateway")
    assert gateway.default
    for flow in definition.outgoing(gateway.id):
        edge = re.search(rf"{flow.source} -> {flow.target} \[(.*)\]", dot)
        assert edge, flow.id
        if flow.id == gateway.default:
            assert "default" in edge.group(1) and 'taillabel="/"' in edge.group(1)
        else:
            assert flow.condition and flow.condition.split()[0] in edge.group(1)


def test_every_node_kind_draws() -> None:
    """A definition holding one of each kind (validity aside) still renders: the designer shows bad drafts too."""
    nodes = [
        {"id": "s", "kind": "start"}, {"id": "ts", "kind": "timer_start", "timer": {"cycle": "0 9 * * *"}},
        {"id": "ms", "kind": "message_start", "message": "go"}, {"id": "e", "kind": "end"},
        {"id": "te", "kind": "terminate_end"}, {"id": "ee", "kind": "error_end", "error_code": "E"},
        {"id": "tc", "kind": "timer_catch", "timer": {"duration": "P1D"}},
        {"id": "mc", "kind": "message_catch", "message": "m"}, {"id": "mt", "kind": "message_throw", "message": "m"},
        {"id": "ct", "kind": "compensation_throw"}, {"id": "t", "kind": "task"},
        {"id": "bt", "kind": "boundary_timer", "attached_to": "t", "timer": {"duration": "PT1H"}},
        {"id": "be", "kind": "boundary_error", "attached_to": "st"},
        {"id": "bm", "kind": "boundary_message", "attached_to": "ut", "message": "m"},
        {"id": "xg", "kind": "exclusive_gateway"}, {"id": "ig", "kind": "inclusive_gateway"},
        {"id": "pg", "kind": "parallel_gateway"}, {"id": "eg", "kind": "event_gateway"},
        {"id": "st", "kind": "service_task", "agent": "a"}, {"id": "ut", "kind": "user_task", "title": "T"},
        {"id": "empty_sub", "kind": "sub_process"},
        {"id": "sub", "kind": "sub_process", "nodes": [{"id": "in_s", "kind": "start"}, {"id": "in_e", "kind": "end"}],
         "flows": [{"id": "in_f", "source": "in_s", "target": "in_e"}]},
    ]
    flows = [{"id": "f1", "source": "s", "target": "sub"}, {"id": "f2", "source": "sub", "target": "ghost"}]
    definition = from_dict({"id": "all", "nodes": nodes, "flows": flows})
    dot = to_dot(definition)
    assert 'subgraph cluster_sub' in dot and "compound=true" in dot
    assert re.search(r"s -> in_s \[.*lhead=cluster_sub", dot)
    assert re.search(r"in_e -> ghost \[.*ltail=cluster_sub", dot)
    assert "no such node" in dot_node(dot, "ghost")  # a dangling flow's target is drawn, marked
    if shutil.which("dot"):
        ids = svg_ids(to_svg(definition))
        assert {n.id for n in definition.all_nodes()} <= ids


@needs_dot
def test_sub_process_is_a_cluster_with_its_id() -> None:
    definition = sub_process_design()
    svg = to_svg(definition, highlight=["step2"], counts={"sp": 4})
    assert re.search(r'<g id="sp" class="cluster"', svg)
    assert {n.id for n in definition.all_nodes()} <= svg_ids(svg)
    assert "[4]" in svg


def test_overlays() -> None:
    definition = designs.load_design("pr_review")
    plain = to_dot(definition)
    task = next(n.id for n in definition.all_nodes() if n.kind == "service_task")
    gateway = next(n.id for n in definition.all_nodes() if n.is_gateway)
    start = next(n.id for n in definition.all_nodes() if n.kind == "start")
    dot = to_dot(definition, highlight=[task], counts={task: 17, gateway: 5}, heat={task: 1.0, start: 0.0})
    assert "penwidth=4" in dot_node(dot, task) and "penwidth=4" not in dot_node(plain, task)
    assert ">17<" not in plain and " 17 " in dot_node(dot, task)
    badge = dot_node(dot, gateway)  # events and gateways carry the badge beside the shape, on a row above the name
    assert "<B>5</B>" in badge and badge.index("<B>5</B>") < badge.index("Approved?")
    assert "</TD></TR><TR><TD>Approved?" in badge  # rows, not cells side by side: a wide name cannot run under it
    hot, cold = dot_node(dot, task), dot_node(dot, start)
    fill = re.search(r'fillcolor="(#[0-9a-f]{6})"', hot).group(1)
    cool = re.search(r'fillcolor="(#[0-9a-f]{6})"', cold).group(1)
    assert fill != cool and fill != "#ffffff"
    assert sum(int(fill[i:i + 2], 16) for i in (1, 3, 5)) < sum(int(cool[i:i + 2], 16) for i in (1, 3, 5))
    assert "fontcolor=white" in hot  # readable on a dark fill
    assert plain == to_dot(definition)  # overlays never leak into later drawings


def test_labels_with_markup_and_backslashes_stay_literal() -> None:
    b = ProcessBuilder("odd", variables={"s": str})
    gate = b.start().task("t", name="A <b>bold</b> & \\n task").exclusive("g")
    gate.when('s == "<x>"').end("e1")
    gate.otherwise().end("e2")
    definition = b.build()
    dot = to_dot(definition)
    label = dot_node(dot, "t")
    assert "&lt;b&gt;bold&lt;/b&gt;" in label and "&amp;" in label and "\\n" in label
    if shutil.which("dot"):
        svg = to_svg(definition)
        assert "&lt;x&gt;" in svg and "A &lt;b&gt;bold&lt;/b&gt; &amp; \\n" in svg


@needs_dot
@pytest.mark.parametrize("suffix", [".svg", ".png", ".pdf", ".dot"])
def test_render_by_suffix(tmp_path, suffix: str) -> None:
    out = render(designs.load_design("pr_review"), tmp_path / f"pr{suffix}")
    data = out.read_bytes()
    magic = {".svg": b"<?xml", ".png": b"\x89PNG", ".pdf": b"%PDF", ".dot": b"digraph"}[suffix]
    assert data.startswith(magic)


def test_render_unknown_suffix(tmp_path) -> None:
    with pytest.raises(RenderError, match=r"\.svg, \.png"):
        render(designs.load_design("pr_review"), tmp_path / "x.jpgg")


def test_missing_dot_binary_says_how_to_install(monkeypatch, tmp_path) -> None:
    def missing(*args, **kwargs):
        raise graphviz.ExecutableNotFound(("dot",))

    monkeypatch.setattr(graphviz.Source, "pipe", missing)
    definition = designs.load_design("pr_review")
    with pytest.raises(WaooawError, match="apt-get install graphviz"):
        to_svg(definition)
    with pytest.raises(WaooawError, match="apt-get install graphviz"):
        render(definition, tmp_path / "x.png")
    assert render(definition, tmp_path / "x.dot").read_text().startswith("digraph")  # DOT needs no binary
    bundle = definition._repr_mimebundle_()
    assert "digraph" in bundle["text/plain"]  # Jupyter falls back to the DOT text


@needs_dot
def test_notebook_display_is_svg() -> None:
    bundle = designs.load_design("pr_review")._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"]


def test_an_unnamed_end_event_is_labelled_with_its_id_in_words() -> None:
    dot = to_dot(designs.load_design("pr_review"))  # its ends 'deployed' and 'issue_created' have no name
    assert ">Deployed</TD>" in dot and ">Issue created</TD>" in dot and "issue_created</TD>" not in dot
    b = ProcessBuilder("p")
    b.start().user("Activity_1wkter0", title="Check the file").end("EndEvent_0x1y2z3")
    drawn = to_dot(b.build())
    assert "Check the file" in dot_node(drawn, "Activity_1wkter0")  # a user task without a name: its title
    assert ">End event</TD>" in drawn and "EndEvent_0x1y2z3</TD>" not in drawn  # a modeler's id: the kind
    assert ">start</TD>" not in dot  # an unnamed start event stays unlabelled
