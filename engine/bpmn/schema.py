"""Validation against the OMG BPMN 2.0 XSD (the schema files are not shipped; pass their folder).

lxml (libxml2) compiles the five schema files in well under a second and validates quickly; the
schema is compiled once per folder.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lxml import etree


@lru_cache(maxsize=4)
def _schema(xsd_dir: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(Path(xsd_dir) / "BPMN20.xsd")))


def schema_errors(xml: str | bytes, xsd_dir: str | Path) -> list[str]:
    """Every schema violation as 'line N: message' (empty when the document is valid)."""
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    doc = etree.fromstring(data, parser)
    schema = _schema(str(Path(xsd_dir).resolve()))
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]
