"""Structural and soundness checks (placeholder contract; filled in by the validation work).

``validate(definition) -> list[Problem]`` returns every problem found, errors and warnings.
"""

from __future__ import annotations

from engine.errors import Problem
from engine.model.definition import ProcessDefinition


def validate(definition: ProcessDefinition) -> list[Problem]:
    return []


def errors_only(definition: ProcessDefinition) -> list[Problem]:
    return [p for p in validate(definition) if p.severity == "error"]
