"""Every design in designs/ exports schema-valid BPMN and comes back equal (whatever designs exist)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bpmn_support import assert_schema_valid

from engine.bpmn import from_bpmn, to_bpmn
from engine.model import ProcessDefinition, load

DESIGNS = Path(__file__).resolve().parents[1] / "designs"


def _designs() -> list[tuple[str, Any]]:
    """(name, loader) for each design: through designs.names()/load_design() when the package offers them,
    else every YAML/JSON/BPMN file in the folder."""
    try:
        import designs

        names = designs.names()  # type: ignore[attr-defined]
        return [(name, lambda n=name: designs.load_design(n)) for name in names]  # type: ignore[attr-defined]
    except (ImportError, AttributeError):
        pass
    files = sorted(p for p in DESIGNS.glob("*") if p.suffix in (".yaml", ".yml", ".json", ".bpmn"))
    return [(p.name, lambda p=p: load(p)) for p in files]


FOUND = _designs()


@pytest.mark.parametrize(("name", "loader"), FOUND or [pytest.param("none", None, marks=pytest.mark.skip(
    reason="no designs in designs/ yet"))], ids=[n for n, _ in FOUND] or None)
def test_design_exports_schema_valid_and_round_trips(name: str, loader: Any) -> None:
    definition: ProcessDefinition = loader()
    xml = to_bpmn(definition)
    assert_schema_valid(xml)
    back = from_bpmn(xml, source=f"{name} (exported)")
    assert back == definition
    assert to_bpmn(back) == xml
