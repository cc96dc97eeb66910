"""Helpers of the bus tests: the PR review started by a GitHub event with its validate step on a topic,
the agents the external workers run (their side effects keyed by the idempotency key), and bus factories."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.bus import worker
from engine.model import ProcessBuilder, ProcessDefinition

PR_OPENED = "github.pull_request.opened"
VALIDATE = "agent.wowvision.task.validate"
A = "designs.agents:"


def pr_review_on_the_bus(max_attempts: int = 3, with_error_boundary: bool = False) -> ProcessDefinition:
    """The seed PR review, started by ``github.pull_request.opened``; WowVision validates on a topic."""
    b = ProcessBuilder("pr_review_bus", name="PR review (bus)",
                       variables={"pr_number": int, "vision_approved": bool})
    validate = b.message_start("pr_opened", PR_OPENED).service(
        "wowvision_validate", name="WowVision validate", topic=VALIDATE, inputs=["pr_number"],
        outputs=["vision_approved"], retry={"attempts": max_attempts, "backoff": "PT0S"})
    approved = validate.exclusive("approved", name="Approved?")
    approved.when("vision_approved").service("deploy", agent=A + "deploy", inputs=["pr_number"]).end("deployed")
    approved.otherwise().service("create_issue", agent=A + "create_issue", inputs=["pr_number"]).end("issue_created")
    if with_error_boundary:
        b.at("wowvision_validate").on_error("vision_down", id="vision_down").end("escalated")
    return b.build()


def effects_file() -> Path:
    return Path(os.environ["WAOOAW_TEST_EFFECTS"])


def _record_once(key: str, value: Any) -> bool:
    """The agent's external side effect, keyed by the idempotency key: a second run changes nothing."""
    folder = effects_file()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(folder / key.replace(":", "_"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump(value, f)
    return True


def runs_file() -> Path:
    return effects_file() / "runs.log"


@worker(VALIDATE)
def validate(inputs: dict[str, Any], context: Any) -> dict[str, Any]:
    """WowVision's check, run by external workers: approves even PR numbers. Each run is logged; the review
    comment (the side effect) is posted once per idempotency key. Behaviour by PR number, for the tests:
    13 sleeps (a worker to kill before it acknowledges), 21 is slow on its first delivery (its lock expires),
    666 raises a BPMN error."""
    pr = int(inputs["pr_number"])
    folder = effects_file()
    folder.mkdir(parents=True, exist_ok=True)
    with open(runs_file(), "a") as log:
        log.write(f"{context.idempotency_key} {pr} {context.worker_id} {context.delivery}\n")
    _record_once(context.idempotency_key, {"pr": pr, "comment": "reviewed"})
    if pr == 13 and not (folder / "survivor").exists():
        (folder / "ready_to_kill").write_text(str(os.getpid()))
        time.sleep(600)  # killed here: received, effect done, not acknowledged
    if pr == 21 and context.delivery == 1:
        deadline = time.monotonic() + 30
        while not (folder / "lock_expired").exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # the test expires the lock meanwhile, then lets this worker answer late
    if pr == 666:
        from engine.runtime.agents import BpmnError

        raise BpmnError("vision_down", "WowVision is down")
    return {"vision_approved": pr % 2 == 0}


def slow_validate(inputs: dict[str, Any], context: Any) -> dict[str, Any]:
    """A 20 ms agent (the benchmark's)."""
    time.sleep(0.02)
    return {"vision_approved": int(inputs["pr_number"]) % 2 == 0}


def unique_prefix() -> str:
    return f"waooaw-test-{uuid.uuid4().hex[:10]}"


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, every: float = 0.02, what: str = "") -> Any:
    """Poll a condition across processes (real time: another process cannot share a virtual clock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value is not None and value is not False and (len(value) if hasattr(value, "__len__") else value):
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
