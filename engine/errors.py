"""Exceptions shared by every part: each names the place (node, field, line) and what to do."""

from __future__ import annotations

from dataclasses import dataclass


class WaooawError(Exception):
    """Base of every error this project raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One finding about a definition: where it is and what is wrong."""

    where: str  # node or flow id, or a field path such as "nodes[2].timer"
    message: str
    line: int | None = None
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        at = f" (line {self.line})" if self.line else ""
        return f"{self.where}{at}: {self.message}"


class DefinitionError(WaooawError):
    """A definition could not be built or loaded; carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem] | Problem | str, source: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [Problem("definition", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        lines = [f"{prefix}{p}" for p in self.problems]
        super().__init__("\n".join(lines) if lines else "invalid definition")


class EngineError(WaooawError):
    """Bad input to the engine API: nothing was written."""


class FormError(EngineError):
    """Form values that do not fit the human task's form; the task stays open."""


class ExpressionError(WaooawError):
    """An expression does not parse, uses something unsafe, or fails to evaluate."""


class TimerSpecError(WaooawError):
    """A duration, date or cycle that cannot be understood."""


class UnknownHandlerError(WaooawError):
    """A named agent or handler could not be found."""


class ConfigError(WaooawError):
    """A setting that cannot be used: an environment variable, a limit, a database URL."""


class DatabaseUnavailable(ConfigError):
    """The database cannot be opened or used (bad URL, missing driver, unreachable server, unusable file);
    the message names the URL (without its password) and the problem."""


class AuthorizationError(EngineError):
    """A principal may not do what it asked: ``rule`` names the rule (``"deploy"``, ``"task.complete"``);
    the refusal is in the audit trail and nothing else was written."""

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message)
        self.rule = rule
