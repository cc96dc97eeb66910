"""The seed designs, each a short builder module and the YAML file generated from it.

``load_design(name)`` reads the YAML (what the designer and CLI edit); ``build_design(name)`` runs the
builder (what a notebook user writes). A test keeps the two equal.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from engine.model import ProcessDefinition, load

HERE = Path(__file__).resolve().parent
NAMES = ("pr_review", "customer_onboarding", "marketing_campaign", "incident_response")


def names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.yaml") if not p.name.endswith(".scenario.yaml"))


def path(name: str) -> Path:
    file = HERE / f"{name}.yaml"
    if not file.exists():
        raise FileNotFoundError(f"no design named {name!r}; known: {', '.join(names())}")
    return file


def scenario_path(name: str) -> Path | None:
    file = HERE / f"{name}.scenario.yaml"
    return file if file.exists() else None


def load_design(name: str) -> ProcessDefinition:
    return load(path(name))


def build_design(name: str) -> ProcessDefinition:
    module = importlib.import_module(f"designs.{name}")
    return module.build()


def write_all() -> list[Path]:
    """Regenerate every YAML file from its builder (run after editing a builder module)."""
    out = []
    for name in NAMES:
        target = HERE / f"{name}.yaml"
        target.write_text(build_design(name).to_yaml(), encoding="utf-8")
        out.append(target)
    return out
