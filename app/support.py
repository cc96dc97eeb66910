"""What the app's pages need beyond Streamlit calls: reading uploads, checking an edited design, overlays.

Kept here (plain functions, no Streamlit) so the pages stay thin and this part is tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine.errors import DefinitionError, Problem
from engine.model import ProcessDefinition, from_json, from_yaml

UPLOAD_TYPES = ["yaml", "yml", "json", "bpmn", "bpmn2", "xml"]


@dataclass
class Checked:
    """An edited design: the definition if it loads, and every problem (load errors or validation findings)."""

    definition: ProcessDefinition | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def table(self) -> pd.DataFrame:
        """One row per problem, errors first, for ``st.dataframe``; the ``line`` column only when a problem has
        one (a design from the canvas or a saved file has no YAML lines: no column of "None")."""
        rows = [{"severity": p.severity, "where": p.where, "line": p.line, "message": p.message}
                for p in sorted(self.problems, key=lambda p: (p.severity != "error", p.line or 0))]
        table = pd.DataFrame(rows, columns=["severity", "where", "line", "message"]).astype({"line": "Int64"})
        return table if table["line"].notna().any() else table.drop(columns="line")


def check_yaml(text: str, source: str = "design.yaml") -> Checked:
    """Load YAML text and validate it; problems carry the line of the node or flow they name."""
    from engine.cli import place
    from engine.validate import handler_problems, validate

    try:
        definition = from_yaml(text, source)
    except DefinitionError as exc:
        return Checked(None, exc.problems)
    # agents not registered yet are warnings while designing (deploy refuses them)
    return Checked(definition, place(validate(definition) + handler_problems(definition), text))


def upload_to_yaml(name: str, data: bytes) -> str:
    """An uploaded design (YAML, JSON or BPMN) as YAML text for the editor; DefinitionError if it does not load.

    YAML is kept as written (comments and order survive); JSON and BPMN are converted. A file larger than
    ``max_file_bytes`` is refused before it is read.
    """
    from engine.limits import LimitExceeded, check_file_size

    try:
        check_file_size(len(data), name)
    except LimitExceeded as exc:
        raise DefinitionError(str(exc), name) from None
    suffix = Path(name).suffix.lower()
    if suffix in (".yaml", ".yml"):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DefinitionError(f"not UTF-8 text: {exc.reason} at byte {exc.start}", name) from None
    if suffix == ".json":
        try:
            return from_json(data.decode("utf-8"), name).to_yaml()
        except UnicodeDecodeError as exc:
            raise DefinitionError(f"not UTF-8 text: {exc.reason} at byte {exc.start}", name) from None
    if suffix in (".bpmn", ".bpmn2", ".xml"):
        from engine.bpmn import from_bpmn

        return from_bpmn(data, source=name).to_yaml()
    raise DefinitionError(f"unknown file type {suffix!r}: upload .yaml, .json or .bpmn", name)


def exports(definition: ProcessDefinition) -> dict[str, tuple[str, str]]:
    """Download files: format -> (file name, content). BPMN is left out if the export refuses this design."""
    files = {"JSON": (f"{definition.id}.json", definition.to_json() + "\n")}
    try:
        from engine.bpmn import to_bpmn

        files["BPMN"] = (f"{definition.id}.bpmn", to_bpmn(definition))
    except Exception as exc:  # the export's own errors vary; the designer shows why instead of failing the page
        files["BPMN"] = ("", f"BPMN export failed: {exc}")
    return files


def overlays(results: Any) -> dict[str, dict[str, Any]]:
    """Diagram overlays from simulation results: ``counts`` (activations per replication, rounded) and
    ``heat`` (mean waiting time relative to the longest wait, 0..1)."""
    log = results.activity_log()
    n = max(len(results.runs), 1)
    counts = {str(k): round(v / n) for k, v in log["activity_id"].value_counts().items()}
    summary = results.summary()
    waits = summary[summary["kpi"] == "waiting_time_mean_h"].set_index("subject")["mean"]
    top = float(waits.max()) if len(waits) else 0.0
    heat = {str(k): float(v) / top for k, v in waits.items()} if top > 0 else {}
    return {"counts": counts, "heat": heat}


def kpi_table(results: Any) -> pd.DataFrame:
    """The KPI summary with the columns a reader needs, CIs as ``[low, high]``."""
    s = results.summary()
    ci = [("" if pd.isna(lo) else f"[{lo:,.3f}, {hi:,.3f}]") for lo, hi in zip(s["ci_low"], s["ci_high"], strict=True)]
    return pd.DataFrame({"KPI": s["kpi"], "subject": s["subject"], "mean": s["mean"].round(3), "95% CI": ci,
                         "replications": s["n"]})
