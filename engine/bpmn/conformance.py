"""Run the BPMN conformance corpus and print the results table (the one in README's "BPMN interchange").

    python -m engine.bpmn.conformance [CORPUS_DIR]      # default: ../shared/corpus/bpmn next to the repo

For every BPMN file (``.bpmn``, ``.bpmn2``, ``.xml``; the ``xsd/`` folder excluded): is the input
schema-valid, does a strict import accept it (fully, or with warnings about approximations), or does
it refuse it (and which unsupported elements a lenient import then reports); is our export of the
lenient import schema-valid, and does import -> export -> import give an equal definition.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from engine.bpmn import import_bpmn, to_bpmn
from engine.bpmn.schema import schema_errors
from engine.errors import DefinitionError

DEFAULT_CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "bpmn"
SUFFIXES = (".bpmn", ".bpmn2", ".xml")


@dataclass
class Row:
    file: str
    input_valid: bool
    status: str  # "imported fully", "imported with warnings", "refused"
    unsupported: list[str] = field(default_factory=list)  # element names a lenient import reports
    warnings: list[str] = field(default_factory=list)  # distinct warning kinds, short
    tolerated: list[str] = field(default_factory=list)  # distinct info kinds, short
    nodes: int = 0
    export_valid: bool = False
    round_trip: bool = False
    error: str | None = None  # an unexpected failure (should never happen)


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.suffix.lower() in SUFFIXES and "xsd" not in p.parts
                  and p.is_file())


def check_file(path: Path, corpus: Path) -> Row:
    data = path.read_bytes()
    xsd = corpus / "xsd"
    row = Row(str(path.relative_to(corpus)), input_valid=not schema_errors(data, xsd), status="refused")
    try:
        import_bpmn(data, source=row.file)
        strict = True
    except DefinitionError:
        strict = False
    try:
        result = import_bpmn(data, source=row.file, lenient=True)
    except DefinitionError as exc:
        row.error = str(exc).splitlines()[0]
        return row
    if strict:
        row.status = "imported with warnings" if result.warnings else "imported fully"
    row.unsupported = result.unsupported_elements
    row.warnings = sorted({_kind(p.message) for p in result.warnings if p.message})
    row.tolerated = sorted({f.element for f in result.findings if f.category == "info"})
    row.nodes = len(result.definition.all_nodes())
    xml = to_bpmn(result.definition)
    row.export_valid = not schema_errors(xml, xsd)
    row.round_trip = import_bpmn(xml, lenient=True).definition == result.definition
    return row


def _kind(message: str) -> str:
    """A warning without its specifics, for a short summary."""
    return message.split(":")[0].split("(")[0].strip()[:60]


def run(corpus: Path = DEFAULT_CORPUS) -> list[Row]:
    return [check_file(p, corpus) for p in corpus_files(corpus)]


def markdown(rows: list[Row]) -> str:
    counts = Counter(r.status for r in rows)
    valid_in = sum(r.input_valid for r in rows)
    lines = [
        f"{len(rows)} files ({valid_in} schema-valid as given): **{counts['imported fully']} imported fully**, "
        f"**{counts['imported with warnings']} imported with warnings**, **{counts['refused']} refused** by a strict "
        f"import (a lenient import reads all {sum(r.error is None for r in rows)} and lists what it left out). "
        f"Exports schema-valid: {sum(r.export_valid for r in rows)}/{len(rows)}; "
        f"import → export → import equal: {sum(r.round_trip for r in rows)}/{len(rows)}.",
        "",
        "| File | Strict import | Unsupported elements (lenient: reported, replaced or left out) | Nodes | "
        "Export valid | Round trip |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        status = r.status if r.error is None else f"error: {r.error}"
        if not r.input_valid:
            status += " (input not schema-valid)"
        unsupported = ", ".join(r.unsupported) or "—"
        lines.append(f"| `{r.file}` | {status} | {unsupported} | {r.nodes} | "
                     f"{'yes' if r.export_valid else 'NO'} | {'equal' if r.round_trip else 'DIFFERS'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    corpus = Path(args[0]) if args else DEFAULT_CORPUS
    if not corpus.is_dir():
        print(f"no corpus at {corpus}", file=sys.stderr)
        return 2
    rows = run(corpus)
    print(markdown(rows))
    return 0 if all(r.error is None and r.export_valid and r.round_trip for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
