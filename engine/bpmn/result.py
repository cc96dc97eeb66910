"""What an import found: each finding names the BPMN element, its id and its line.

Four categories, so that "never a silent drop" is checkable:
- ``error``: the file is broken (bad XML, missing or dangling reference, duplicate id); always refused.
- ``unsupported``: an element or value that changes execution and that the model cannot express;
  a strict import refuses, a lenient one imports the rest and reports it as a warning.
- ``warning``: imported, but something was approximated (e.g. a service task without implementation).
- ``info``: tolerated because it does not change execution (data objects, annotations, colours, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from engine.errors import DefinitionError, Problem
from engine.model.definition import ProcessDefinition

Category = Literal["error", "unsupported", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    category: Category
    element: str  # BPMN local name, e.g. "complexGateway"
    id: str | None
    line: int | None
    message: str

    def problem(self, lenient: bool = False) -> Problem:
        where = f"{self.element} {self.id!r}" if self.id else self.element
        if self.category == "error" or (self.category == "unsupported" and not lenient):
            severity = "error"
        elif self.category == "info":
            severity = "info"
        else:
            severity = "warning"
        return Problem(where, self.message, line=self.line, severity=severity)


@dataclass
class ImportResult:
    """A definition and what was approximated or left out on the way."""

    definition: ProcessDefinition
    findings: list[Finding] = field(default_factory=list)
    lenient: bool = False

    @property
    def warnings(self) -> list[Problem]:
        """Everything that was not imported exactly (unsupported elements in lenient mode, approximations)."""
        return [f.problem(self.lenient) for f in self.findings if f.category in ("unsupported", "warning")]

    @property
    def info(self) -> list[Problem]:
        """Tolerated elements that do not change execution."""
        return [f.problem(self.lenient) for f in self.findings if f.category == "info"]

    @property
    def unsupported(self) -> list[Finding]:
        return [f for f in self.findings if f.category == "unsupported"]

    @property
    def unsupported_elements(self) -> list[str]:
        """Sorted distinct BPMN element names that were not supported (for reports and tests)."""
        return sorted({f.element for f in self.unsupported})


def raise_if_refused(findings: list[Finding], lenient: bool, source: str | None) -> None:
    refused = [f for f in findings if f.category == "error" or (f.category == "unsupported" and not lenient)]
    if not refused:
        return
    problems = [f.problem(lenient) for f in refused]
    if all(f.category == "unsupported" for f in refused):
        problems.append(Problem("import", f"{len(refused)} unsupported element(s) or value(s); a lenient import "
                                "(lenient=True, CLI --lenient) imports the rest and lists these as warnings"))
    raise DefinitionError(problems, source)
