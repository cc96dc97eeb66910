"""A collaboration with several executable participants: every process of the file, not only the first.

``import_bpmn`` imports one process (the first executable one, or ``process_id``) and warns about the others;
``import_all`` imports each of them the same way (BPMN 2.0 §9: each participant of a collaboration references
its own process), so a file with a customer pool and a supplier pool gives two definitions. Message flows
between the pools are carried by message names, as for a single process.
"""

from __future__ import annotations

from engine.bpmn.namespaces import b
from engine.bpmn.reader import FLOW_NODE_TAGS, local, parse_xml, ref
from engine.bpmn.result import ImportResult


def executable_processes(text: str | bytes, source: str | None = None) -> list[str]:
    """The ids of the processes ``import_all`` imports, in document order: those marked ``isExecutable="true"``
    that have flow nodes; when none is marked, those in a pool (a participant's ``processRef``), else every
    process with flow nodes. Raises ``DefinitionError`` for a document that is not BPMN XML."""
    root = parse_xml(text, source)
    processes = [p for p in root.findall(b("process")) if any(local(c) in FLOW_NODE_TAGS for c in p)]
    executable = [p for p in processes if (p.get("isExecutable") or "").lower() == "true"]
    in_pools = {ref(part.get("processRef")) for part in root.iter(b("participant"))}
    pooled = [p for p in processes if p.get("id") in in_pools]
    return [str(p.get("id")) for p in (executable or pooled or processes)]


def import_all(text: str | bytes, source: str | None = None, lenient: bool = False) -> list[ImportResult]:
    """Import every executable process of the file (see :func:`executable_processes`), each as
    ``import_bpmn(text, process_id=...)`` would, with its own findings. Strict mode refuses the whole file when
    any of them is refused (``DefinitionError`` naming the element, id and line); a file without processes is
    refused as by ``import_bpmn``."""
    from engine.bpmn import import_bpmn  # the size check and the refusal rules of a single import

    import_bpmn(text, source=source, lenient=True)  # a broken or oversized file is refused here, once
    ids = executable_processes(text, source)
    return [import_bpmn(text, source=source, lenient=lenient, process_id=pid) for pid in ids]
