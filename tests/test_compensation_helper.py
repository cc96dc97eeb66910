"""The design review's execute_with_compensation: undo what was done, newest first, each once."""

from __future__ import annotations

from typing import Any

import pytest

from engine.bus import CompensationError, execute_with_compensation


class World:
    """A log of what happened, and steps that fail on demand."""

    def __init__(self, failing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.log: list[str] = []
        self.failing = failing

    def do(self, name: str, result: Any = None) -> Any:
        def action() -> Any:
            if name in self.failing:
                raise RuntimeError(f"{name} broke")
            self.log.append(name)
            return result if result is not None else f"{name}-result"

        action.__qualname__ = name
        return action

    def undo(self, name: str) -> Any:
        def undo(result: Any) -> None:
            if f"undo {name}" in self.failing:
                raise ConnectionError(f"cannot undo {name}")
            self.log.append(f"undo {name}({result})")

        return undo


def test_all_steps_succeed_and_return_their_results() -> None:
    w = World()
    steps = [(w.do("create_issue", 17), w.undo("create_issue")), (w.do("update_db"), w.undo("update_db"))]
    assert execute_with_compensation(steps) == [17, "update_db-result"]
    assert w.log == ["create_issue", "update_db"]


def test_step_three_fails_undoes_two_then_one_each_once() -> None:
    w = World(failing={"send_email"})
    steps = [(w.do("create_issue", 17), w.undo("create_issue")), (w.do("update_db"), w.undo("update_db")),
             (w.do("send_email"), w.undo("send_email"))]
    with pytest.raises(CompensationError) as exc:
        execute_with_compensation(steps)
    assert w.log == ["create_issue", "update_db", "undo update_db(update_db-result)", "undo create_issue(17)"]
    e = exc.value
    assert (e.failed, e.undone, e.not_undone, e.fully_undone) == ("send_email", ["update_db", "create_issue"], [],
                                                                  True)
    assert isinstance(e.__cause__, RuntimeError) and str(e.error) == "send_email broke"
    assert str(e) == ("step 'send_email' failed (RuntimeError: send_email broke); undone: update_db, create_issue")


def test_a_failing_undo_is_reported_and_the_others_still_run() -> None:
    w = World(failing={"send_email", "undo update_db"})
    steps = [(w.do("create_issue"), w.undo("create_issue")), (w.do("update_db"), w.undo("update_db")),
             (w.do("send_email"), w.undo("send_email"))]
    with pytest.raises(CompensationError) as exc:
        execute_with_compensation(steps)
    e = exc.value
    assert (e.undone, e.not_undone) == (["create_issue"], ["update_db"]) and not e.fully_undone
    assert "NOT undone: update_db (ConnectionError: cannot undo update_db)" in str(e)
    assert w.log == ["create_issue", "update_db", "undo create_issue(create_issue-result)"]


def test_undo_without_a_parameter_and_steps_without_undo() -> None:
    w = World(failing={"c"})
    undone = []
    with pytest.raises(CompensationError) as exc:
        execute_with_compensation([(w.do("a"), lambda: undone.append("a")), (w.do("b"), None), (w.do("c"), None)])
    assert undone == ["a"] and exc.value.not_undone == ["b"] and "b (no undo)" in str(exc.value)


def test_a_malformed_step_is_a_clear_error_and_nothing_runs() -> None:
    w = World()
    with pytest.raises(TypeError, match="step 2 must be \\(action, undo\\)"):
        execute_with_compensation([(w.do("a"), None), ("not callable", None)])  # type: ignore[list-item]
    assert w.log == []
