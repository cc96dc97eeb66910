"""Timer firing: hold N waiting instances in SQLite with flat worker memory, then fire their timers.

    .venv/bin/python bench/timer_firing.py [--n 100000] [--quick] [--timer PT1H] [--no-spiff] [--markdown]

What it measures, and why: a process that waits for a week-long trial must not hold the waiting
instances in memory, and firing a due timer must stay cheap when many fall due together. Target:
100,000 waiting instances with flat worker memory, due timers fired at <= 250 µs per instance.
The reference is SpiffWorkflow 3.x in memory, which keeps every waiting instance in memory and has no
scheduler: the application must poll every workflow (``refresh_timers()`` + ``do_engine_steps()``).

The model is start -> intermediate timer catch (PT1H) -> end. Each part runs in its own process so
that resident memory (VmRSS, sampled every 10 ms for the peaks) belongs to that part alone:

1. engine start: ``Engine(sqlite file, VirtualClock)`` starts N instances (µs per instance, the
   starting process's RSS growth, the database size).
2. engine fire, a fresh process (the worker): opens the same file on a VirtualClock at the same
   moment; RSS when opened, after one pass over the due jobs while N timers wait (nothing is due),
   then ``advance()`` past the due time: µs per fired instance and the peak RSS while firing.
   Every instance must be completed.
3. SpiffWorkflow: N workflows started and left waiting on the timer (µs each, RSS per waiting
   instance), then the clock is moved past the due time and every workflow is polled (µs each).
   Spiff reads the time with ``datetime.now()`` in its timer module; that name is replaced by a
   virtual clock so PT1H passes instantly, as the engine's VirtualClock does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provenance import package_version, revision  # noqa: E402

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # the virtual moment every part starts at
TARGET_US = 250.0
MiB = 1024 * 1024


def rss_bytes() -> int:
    """Resident memory of this process now (VmRSS)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


@contextmanager
def peak_rss(into: dict[str, int], key: str, every: float = 0.01) -> Iterator[None]:
    """Sample VmRSS in a thread while the block runs; store the highest value seen in ``into[key]``."""
    stop = threading.Event()
    peak = [rss_bytes()]

    def sample() -> None:
        while not stop.wait(every):
            peak[0] = max(peak[0], rss_bytes())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        into[key] = max(peak[0], rss_bytes())


# --- the three parts (each in its own process) -----------------------------------------------------


def timer_definition(duration: str) -> Any:
    from engine.model import ProcessBuilder

    b = ProcessBuilder("timer_wait", name="Timer wait")
    b.start().timer("wait", duration).end("done")
    return b.build()


def part_engine_start(db_url: str, n: int, duration: str) -> dict[str, Any]:
    from engine.runtime import Engine, VirtualClock
    from engine.security import Principal

    engine = Engine(db_url, clock=VirtualClock(START), principal=Principal.system())
    engine.deploy(timer_definition(duration))
    out: dict[str, Any] = {"rss_before": rss_bytes()}
    with peak_rss(out, "rss_peak"):
        started = time.perf_counter()
        for _ in range(n):
            engine.start("timer_wait")
        out["start_s"] = time.perf_counter() - started
    out["rss_after"] = rss_bytes()
    engine.db.dispose()
    engine.reader.dispose()
    return out


def _count(engine: Any, status: str) -> int:
    from sqlalchemy import text

    with engine.reader.connect() as conn:
        return int(conn.execute(text("select count(*) from wf_instances where status = :s"), {"s": status}).scalar())


def part_engine_fire(db_url: str, n: int, duration: str) -> dict[str, Any]:
    from engine.model.timers import parse_duration
    from engine.runtime import Engine, VirtualClock
    from engine.security import Principal

    out: dict[str, Any] = {"rss_before": rss_bytes()}
    engine = Engine(db_url, clock=VirtualClock(START), principal=Principal.system())
    out["rss_opened"] = rss_bytes()
    out["ran_while_waiting"] = engine.run_until_idle()  # a worker's pass: nothing is due yet
    out["waiting"] = _count(engine, "running")
    out["next_due"] = str(engine.next_due())
    out["rss_waiting"] = rss_bytes()
    with peak_rss(out, "rss_peak_firing"):
        started = time.perf_counter()
        out["fired_jobs"] = engine.advance(parse_duration(duration) + timedelta(seconds=1))
        out["fire_s"] = time.perf_counter() - started
    out["rss_after"] = rss_bytes()
    out["completed"] = _count(engine, "completed")
    return out


def spiff_bpmn(duration: str) -> bytes:
    # No XML declaration (pitfall 1); the duration is a Python expression, so it is quoted (pitfall 3).
    return f"""<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="timer_defs"
  targetNamespace="waooaw-bench">
<process id="timer_wait" isExecutable="true">
<startEvent id="start"/>
<intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>"{duration}"</timeDuration>
</timerEventDefinition></intermediateCatchEvent>
<endEvent id="done"/>
<sequenceFlow id="start__wait" sourceRef="start" targetRef="wait"/>
<sequenceFlow id="wait__done" sourceRef="wait" targetRef="done"/>
</process>
</definitions>""".encode()


class VirtualDatetime(datetime):
    """``datetime`` whose ``now()`` is a settable moment: installed in Spiff's timer module only."""

    moment: datetime = START

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> VirtualDatetime:
        moment = cls.moment if tz is None else cls.moment.astimezone(tz)
        return cls.fromtimestamp(moment.timestamp(), moment.tzinfo)


def part_spiff(n: int, duration: str) -> dict[str, Any]:
    import SpiffWorkflow.bpmn.specs.event_definitions.timer as spiff_timer
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.parser import BpmnParser

    from engine.model.timers import parse_duration

    spiff_timer.datetime = VirtualDatetime  # type: ignore[attr-defined,misc]
    parser = BpmnParser()
    parser.add_bpmn_str(spiff_bpmn(duration))
    spec = parser.get_spec("timer_wait")
    out: dict[str, Any] = {"rss_before": rss_bytes()}
    workflows = []
    with peak_rss(out, "rss_peak_start"):
        started = time.perf_counter()
        for _ in range(n):
            workflow = BpmnWorkflow(spec)
            workflow.do_engine_steps()  # runs to the timer, which computes its due time and waits
            workflows.append(workflow)
        out["start_s"] = time.perf_counter() - started
    out["rss_waiting"] = rss_bytes()
    out["waiting"] = sum(1 for w in workflows if not w.is_completed())
    VirtualDatetime.moment = START + parse_duration(duration) + timedelta(seconds=1)
    with peak_rss(out, "rss_peak_firing"):
        started = time.perf_counter()
        for workflow in workflows:  # no scheduler: poll every waiting workflow
            workflow.refresh_timers()
            workflow.do_engine_steps()
        out["fire_s"] = time.perf_counter() - started
    out["rss_after"] = rss_bytes()
    out["completed"] = sum(1 for w in workflows if w.is_completed())
    return out


# --- the driver ------------------------------------------------------------------------------------


def run_part(part: str, n: int, duration: str, db_url: str = "") -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--part", part, "--n", str(n), "--timer", duration]
    if db_url:
        command += ["--db", db_url]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"part {part} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def report(n: int, duration: str, start: dict[str, Any], fire: dict[str, Any], spiff: dict[str, Any] | None,
           db_bytes: int, as_markdown: bool) -> None:
    def mib(value: float) -> str:
        return f"{value / MiB:,.1f}"

    rows = [["engine SQLite", f"{start['start_s'] / n * 1e6:,.0f}", f"{fire['fire_s'] / n * 1e6:,.0f}",
             mib(fire["rss_opened"]), mib(fire["rss_waiting"]),
             f"{(fire['rss_waiting'] - fire['rss_opened']) / n:,.1f}", mib(fire["rss_peak_firing"]),
             f"{fire['completed']:,}"]]
    if spiff is not None:
        rows.append(["SpiffWorkflow (memory)", f"{spiff['start_s'] / n * 1e6:,.0f}",
                     f"{spiff['fire_s'] / n * 1e6:,.0f}", mib(spiff["rss_before"]), mib(spiff["rss_waiting"]),
                     f"{(spiff['rss_waiting'] - spiff['rss_before']) / n:,.1f}", mib(spiff["rss_peak_firing"]),
                     f"{spiff['completed']:,}"])
    header = ["runtime", "start µs/inst", "fire µs/inst", "RSS idle MiB", f"RSS {n:,} waiting MiB",
              "bytes/waiting inst", "peak RSS firing MiB", "completed"]
    print(f"\n{n:,} instances waiting on a {duration} timer; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; "
          f"SpiffWorkflow {package_version('SpiffWorkflow')}; code {revision()}")
    if as_markdown:
        print("| " + " | ".join(header) + " |")
        print("|---|" + "---:|" * (len(header) - 1))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        print("  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True))))
        for row in rows:
            print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    fire_us = fire["fire_s"] / n * 1e6
    print(f"- engine fire: {fire_us:,.0f} µs per instance (target <= {TARGET_US:.0f}): "
          f"{'met' if fire_us <= TARGET_US else 'NOT met'}; {fire['fired_jobs']:,} jobs run by advance()")
    if spiff is not None:
        print(f"- engine / SpiffWorkflow: start {start['start_s'] / spiff['start_s']:.2f}x, "
              f"fire {fire['fire_s'] / spiff['fire_s']:.2f}x the time")
    print(f"- the starting process: RSS {mib(start['rss_before'])} -> {mib(start['rss_after'])} MiB "
          f"(peak {mib(start['rss_peak'])}) over {n:,} starts; SQLite file {mib(db_bytes)} MiB "
          f"({db_bytes / n:,.0f} bytes per instance)")
    print(f"- the worker: RSS opened {mib(fire['rss_opened'])}, with {fire['waiting']:,} waiting "
          f"{mib(fire['rss_waiting'])}, peak while firing {mib(fire['rss_peak_firing'])}, after "
          f"{mib(fire['rss_after'])} MiB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100_000, help="waiting instances (default 100,000)")
    parser.add_argument("--quick", action="store_true", help="10,000 instances")
    parser.add_argument("--timer", default="PT1H", help="ISO-8601 duration of the timer (default PT1H)")
    parser.add_argument("--no-spiff", action="store_true", help="skip the SpiffWorkflow reference")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table (for the README)")
    parser.add_argument("--part", choices=["engine-start", "engine-fire", "spiff"], help=argparse.SUPPRESS)
    parser.add_argument("--db", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n = 10_000 if args.quick else args.n
    if args.part == "engine-start":
        print(json.dumps(part_engine_start(args.db, n, args.timer)))
        return
    if args.part == "engine-fire":
        print(json.dumps(part_engine_fire(args.db, n, args.timer)))
        return
    if args.part == "spiff":
        print(json.dumps(part_spiff(n, args.timer)))
        return

    with tempfile.TemporaryDirectory(prefix="waooaw-timers-") as tmp:
        db_file = Path(tmp) / "timers.db"
        url = f"sqlite:///{db_file}"
        print(f"engine: starting {n:,} instances ...", file=sys.stderr, flush=True)
        start = run_part("engine-start", n, args.timer, url)
        db_bytes = sum(f.stat().st_size for f in Path(tmp).iterdir())
        print("engine: firing ...", file=sys.stderr, flush=True)
        fire = run_part("engine-fire", n, args.timer, url)
    if fire["completed"] != n or fire["waiting"] != n:
        raise SystemExit(f"engine: {fire['waiting']} waited and {fire['completed']} completed, expected {n}")
    spiff = None
    if not args.no_spiff:
        print("SpiffWorkflow ...", file=sys.stderr, flush=True)
        spiff = run_part("spiff", n, args.timer)
        if spiff["completed"] != n or spiff["waiting"] != n:
            raise SystemExit(f"SpiffWorkflow: {spiff['waiting']} waited and {spiff['completed']} completed")
    report(n, args.timer, start, fire, spiff, db_bytes, args.markdown)


if __name__ == "__main__":
    main()
