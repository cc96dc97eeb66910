"""How fast a large design opens on the Designer's canvas (target: a 200-node design in under 2 s).

Measures, for designs of 50, 100 and 200 nodes (a chain of service and user tasks with an exclusive split and
merge every few steps, the shape of real designs), the steps of opening one in the Designer:

- ``export``   the definition as BPMN with a computed layout (``engine.bpmn.to_bpmn``, Python);
- ``canvas``   bpmn-js importing that XML and drawing it, fitted to the view, in Debian's Chromium (headless,
               the committed bundle, timed inside the page with performance.now());
- ``save``     bpmn-js ``saveXML`` (what the canvas does after each change);
- ``read``     the canvas's XML read back and validated (``app.designer.read_canvas``, Python: every change).

The open time a person sees is export + canvas (+ the Streamlit round trip, not measured here). Median of
``--repeat`` runs, interleaved by size. Run: ``.venv/bin/python bench/designer_canvas.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.provenance import package_version, revision
from engine.model import ProcessBuilder, ProcessDefinition

CHROMIUM = "/usr/bin/chromium"


def design(nodes: int) -> ProcessDefinition:
    """About ``nodes`` nodes: start, then blocks of task -> user task -> split (two tasks) -> merge, then end."""
    b = ProcessBuilder(f"bench_{nodes}", name=f"{nodes} nodes")
    cursor = b.start("start")
    i = 0
    while len(b._nodes) < nodes - 6:
        cursor = cursor.service(f"work_{i}", agent="designs.agents:deploy").user(f"check_{i}", title=f"Check {i}",
                                                                                   assignee="alice")
        split = cursor.exclusive(f"split_{i}", name=f"OK {i}?")
        merge_id = f"merge_{i}"
        split.when("approved").service(f"yes_{i}", agent="designs.agents:deploy").exclusive(merge_id)
        cursor = split.otherwise().service(f"no_{i}", agent="designs.agents:notify").to(merge_id)
        i += 1
    cursor.end("end")
    return b.build()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200])
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from app.components.bpmn_canvas.bundle import STATIC
    from app.designer import read_canvas
    from engine.bpmn import to_bpmn

    definitions = {n: design(n) for n in args.sizes}
    times: dict[int, dict[str, list[float]]] = {n: {"export": [], "canvas": [], "save": [], "read": []}
                                               for n in args.sizes}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto((STATIC / "index.html").as_uri())
        page.wait_for_function("() => !!window.bpmnModeler")
        for _ in range(args.repeat):
            for n, definition in definitions.items():  # interleaved: a busy moment hits every size alike
                start = time.perf_counter()
                xml = to_bpmn(definition)
                times[n]["export"].append(time.perf_counter() - start)
                canvas, save, saved = page.evaluate("""async (xml) => {
                    const m = window.bpmnModeler;
                    const t0 = performance.now();
                    await m.importXML(xml);
                    m.get('canvas').zoom('fit-viewport');
                    await new Promise(requestAnimationFrame);
                    const t1 = performance.now();
                    const { xml: out } = await m.saveXML({ format: true });
                    const t2 = performance.now();
                    return [(t1 - t0) / 1000, (t2 - t1) / 1000, out];
                }""", xml)
                times[n]["canvas"].append(canvas)
                times[n]["save"].append(save)
                start = time.perf_counter()
                reading = read_canvas(saved)
                times[n]["read"].append(time.perf_counter() - start)
                assert reading.definition is not None and len(reading.definition.all_nodes()) == len(
                    definition.all_nodes())
        browser.close()

    print(f"Designer canvas open time (median of {args.repeat}, seconds); commit {revision()}, "
          f"streamlit {package_version('streamlit')}, Chromium {CHROMIUM}")
    print(f"{'nodes':>6} {'export':>8} {'canvas':>8} {'open':>8} {'save':>8} {'read':>8}")
    for n, definition in definitions.items():
        med = {k: statistics.median(v) for k, v in times[n].items()}
        print(f"{len(definition.all_nodes()):>6} {med['export']:>8.3f} {med['canvas']:>8.3f} "
              f"{med['export'] + med['canvas']:>8.3f} {med['save']:>8.3f} {med['read']:>8.3f}")
    print("open = export + canvas (the target: under 2 s for 200 nodes)")


if __name__ == "__main__":
    main()
