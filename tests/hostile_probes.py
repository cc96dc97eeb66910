"""Hostile and malformed inputs, generated here (no large files in the repo), for tests/test_hostile_inputs.py.

``python tests/hostile_probes.py NAME...`` runs the named probes in this process (the test starts it with an
address-space limit) and prints one JSON line per probe: its name, the exception's type and message, whether
it is the project's own error (``WaooawError``) and the seconds it took. A probe that returns prints
``"raised": null``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LAUGHS = "id: laughs\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefghijkl", "bcdefghijklm", strict=True)
) + "nodes: [*m]\n"

DESIGN = textwrap.dedent("""\
    id: probe
    nodes:
    - {id: start, kind: start}
    - {id: wait, kind: timer_catch, timer: TIMER}
    - {id: split, kind: exclusive_gateway, default: to_small}
    - {id: big, kind: end}
    - {id: small, kind: end}
    flows:
    - {id: to_wait, source: start, target: wait}
    - {id: to_split, source: wait, target: split}
    - {id: to_big, source: split, target: big, condition: "CONDITION"}
    - {id: to_small, source: split, target: small}
    """)

SCENARIO = "design: customer_onboarding\nhorizon: P7D\narrivals: {rate: 10}\n"


def design(timer: str = "PT1H", condition: str = "true") -> str:
    return DESIGN.replace("TIMER", timer).replace("CONDITION", condition)


def nested_subprocesses(depth: int) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [{"id": "s", "kind": "start"}, {"id": "e", "kind": "end"}]
    flows: list[dict[str, Any]] = [{"id": "f", "source": "s", "target": "e"}]
    for i in range(depth):
        inner = {"id": f"p{i}", "kind": "sub_process", "nodes": nodes, "flows": flows}
        nodes = [{"id": f"s{i}", "kind": "start"}, inner, {"id": f"e{i}", "kind": "end"}]
        flows = [{"id": f"a{i}", "source": f"s{i}", "target": f"p{i}"},
                 {"id": f"b{i}", "source": f"p{i}", "target": f"e{i}"}]
    return {"id": "deep", "nodes": nodes, "flows": flows}


def _definition(text: str) -> Any:
    from engine.model.serialize import from_yaml
    from engine.validate import errors_only

    definition = from_yaml(text, "probe.yaml")
    problems = errors_only(definition)
    if problems:
        from engine.errors import DefinitionError

        raise DefinitionError(problems, "probe.yaml")
    return definition


def _bpmn(process_id: str) -> Any:
    from engine.bpmn import import_bpmn, to_bpmn
    from engine.model import ProcessBuilder

    builder = ProcessBuilder("short")
    builder.start().task("t").end("done")
    xml = to_bpmn(builder.build())
    xml = xml if isinstance(xml, str) else xml.decode()
    return import_bpmn(xml.replace("short", process_id))


def _json_definition(text: str) -> Any:
    from engine.model.serialize import from_json

    return from_json(text, "probe.json")


def _scenario(text: str) -> Any:
    from simulator.scenario import from_yaml

    return from_yaml(text, "probe.scenario.yaml")


def _file(suffix: str, data: bytes) -> Any:
    from engine.model import load

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"probe{suffix}"
        path.write_bytes(data)
        return load(path)


def _evaluate(source: str, variables: dict[str, Any] | None = None) -> Any:
    from engine.model.expressions import evaluate

    return evaluate(source, variables or {})


def _validate_metadata(value: Any) -> Any:
    from engine.errors import DefinitionError
    from engine.model import ProcessBuilder
    from engine.validate import errors_only

    builder = ProcessBuilder("meta")
    builder.start().task("t").end()
    definition = builder.build()
    definition.metadata["blob"] = value
    problems = errors_only(definition)
    if problems:
        raise DefinitionError(problems, "meta")
    return definition.to_yaml()


def _small_file_limit() -> Any:
    from engine.limits import override

    with override(max_file_bytes=1_000):
        return _file(".yaml", design().encode() + b"# " + b"x" * 2_000 + b"\n")


def _retry_delay() -> Any:
    from engine.model.nodes import RetryPolicy

    delay = RetryPolicy(attempts=100, backoff="PT1S", multiplier=1e300, max_backoff="PT1H").delay(100)
    if delay.total_seconds() != 3600:
        raise AssertionError(f"delay {delay} is not the cap")
    raise _Computed("the delay is the cap")


class _Computed(Exception):
    """A probe whose point is that the value computes: reported as raised by this marker."""


# name -> (probe, text the message must contain)
PROBES: dict[str, tuple[Callable[[], Any], str]] = {
    # kind 1 and 3: YAML/JSON loading
    "yaml-billion-laughs": (lambda: _definition(LAUGHS), "max_yaml_nodes"),
    "yaml-recursive-alias": (lambda: _definition("id: r\nnodes: &n [*n]\n"), "max_nesting_depth"),
    "yaml-deep-nesting": (lambda: _definition("id: d\nnodes: " + "[" * 5_000 + "]" * 5_000 + "\n"), "nesting"),
    "yaml-5000-digit-number": (lambda: _definition("id: n\nversion: " + "9" * 5_000 + "\n"), "cannot be read"),
    "yaml-impossible-date": (lambda: _definition("id: n\nwhen: 2026-02-31\nnodes: []\n"), "cannot be read"),
    "yaml-python-tag": (lambda: _definition("id: !!python/object/apply:os.system [id]\n"), "python"),
    "yaml-not-a-mapping": (lambda: _definition("- 1\n- 2\n"), "expected a mapping"),
    "yaml-wrong-typed-nodes": (lambda: _definition("id: w\nnodes: 5\n"), "nodes"),
    "yaml-wrong-typed-id": (lambda: _definition("id: [1, 2]\nnodes: []\n"), "id"),
    "yaml-wrong-typed-retry": (lambda: _definition(design().replace(
        "{id: big, kind: end}", "{id: big, kind: service_task, agent: a.b, retry: {attempts: many}}")), "attempts"),
    "json-deep-nesting": (lambda: _json_definition("[" * 100_000 + "]" * 100_000), "nest"),
    "json-5000-digit-number": (lambda: _json_definition('{"id": "n", "version": ' + "9" * 5_000 + "}"), "read"),
    "file-not-utf8": (lambda: _file(".yaml", b"id: \xff\xfe\n"), "UTF-8"),
    "file-too-large": (_small_file_limit, "max_file_bytes"),
    "subprocesses-nested-200": (lambda: _json_definition(json.dumps(nested_subprocesses(200))), "max_nesting_depth"),
    "subprocesses-nested-40": (lambda: _definition(json.dumps(nested_subprocesses(40))), "max_nesting_depth"),
    "metadata-binary": (lambda: _validate_metadata(b"\xff\xfe\x00"), "cannot be saved"),
    # kind 5: ids and names, one length and alphabet everywhere (model, YAML, BPMN import, deploy, both databases)
    "id-too-long": (lambda: _definition("id: " + "p" * 300 + "\nnodes: []\n"), "max_id_length"),
    "element-id-too-long": (lambda: _definition(design().replace("big", "b" * 300)), "max_id_length"),
    "id-with-a-space": (lambda: _definition("id: two words\nnodes: []\n"), "not a valid id"),
    "variable-name-too-long": (lambda: _definition("id: v\nvariables: [{name: " + "v" * 300 + ", type: int}]\n"
                                                   "nodes: []\n"), "max_id_length"),
    "message-name-control-character": (lambda: _definition(design().replace(
        "{id: big, kind: end}", '{id: big, kind: message_throw, message: "m\\x01"}')), "control character"),
    "message-name-too-long": (lambda: _definition(design().replace(
        "{id: big, kind: end}", "{id: big, kind: message_throw, message: " + "m" * 300 + "}")), "max_key_length"),
    "bpmn-process-id-too-long": (lambda: _bpmn("p" * 300), "max_id_length"),
    # kind 1 and 2: durations, cycles, multipliers
    "duration-beyond-calendar": (lambda: _definition(design(timer="P99999999999D")), "beyond"),
    "duration-beyond-limit": (lambda: _definition(design(timer="P99999D")), "max_timer_duration"),
    "cycle-1-ms": (lambda: _definition(design(timer="R/PT0.001S")), "min_timer_cycle"),
    "retry-multiplier-overflow": (_retry_delay, "the delay is the cap"),
    # kind 1: expressions, static
    "condition-cpu-bomb": (lambda: _definition(design(condition="3999999**3999999 > 0")), "max_int_digits"),
    "condition-shift-bomb": (lambda: _definition(design(condition="1 << 10**10 > 0")), "max_int_digits"),
    "condition-huge-literal": (lambda: _definition(design(condition="9" * 5_000 + " > 0")), "digits"),
    "condition-too-long": (lambda: _definition(design(condition="x or " * 3_000 + "x")), "max_expression_length"),
    "condition-deep-brackets": (lambda: _definition(design(condition="(" * 2_000 + "1" + ")" * 2_000)), "parse"),
    # kind 1: expressions, at run time
    "evaluate-power-of-variables": (lambda: _evaluate("x ** x > 0", {"x": 3_999_999}), "max_int_digits"),
    "evaluate-repeat-text": (lambda: _evaluate("len(s * n) > 0", {"s": "ab", "n": 10**9}), "max_string_length"),
    "evaluate-repeat-list": (lambda: _evaluate("len(xs * n) > 0", {"xs": [1], "n": 10**9}), "max_string_length"),
    "evaluate-multiply-growth": (lambda: _evaluate("x * x * x * x * x * x * x * x > 0", {"x": 10**400}),
                                 "max_int_digits"),
    "evaluate-nested-comprehension": (lambda: _evaluate("len([1 for a in s for b in s for c in s]) > 0",
                                                        {"s": "x" * 5_000}), "too many elements"),
    "evaluate-shift-variable": (lambda: _evaluate("1 << n > 0", {"n": 10**9}), "max_int_digits"),
    # scenarios (the simulator's loader shares the YAML rules)
    "scenario-billion-laughs": (lambda: _scenario(LAUGHS), "max_yaml_nodes"),
    "scenario-5000-digit-number": (lambda: _scenario(SCENARIO + "replications: " + "9" * 5_000 + "\n"),
                                   "cannot be read"),
    "scenario-wrong-typed-horizon": (lambda: _scenario(SCENARIO.replace("P7D", "[1, 2]")), "horizon"),
    "scenario-overflowing-horizon": (lambda: _scenario(SCENARIO.replace("P7D", "P99999999999D")), "horizon"),
}


def run(names: list[str]) -> None:
    from engine.errors import WaooawError

    for name in names:
        probe, _ = PROBES[name]
        started = time.perf_counter()
        raised: BaseException | None = None
        try:
            probe()
        except BaseException as exc:  # the point: report whatever escapes
            raised = exc
        record = {"name": name, "seconds": round(time.perf_counter() - started, 3),
                  "raised": type(raised).__name__ if raised is not None else None,
                  "project": isinstance(raised, WaooawError | _Computed),
                  "message": str(raised) if raised is not None else ""}
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    run(sys.argv[1:] or list(PROBES))
