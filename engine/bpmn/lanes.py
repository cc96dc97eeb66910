"""Lanes as the people who do the work: a lane's name as the candidate group of the user tasks in it.

A BPMN lane carries who does the work (BPMN 2.0 §10.8: "Lanes are used to organize and categorize
Activities"), but what it means for task assignment is left to the engine. The import keeps each node's lane
in ``metadata['lane']`` (and the export draws it again); when the user asks, this maps it onto the user
tasks' ``candidate_groups``, as teams moving from a lane-per-team diagram expect.
"""

from __future__ import annotations

from typing import Any

from engine.model.definition import ProcessDefinition


def lanes_as_candidate_groups(definition: ProcessDefinition, overwrite: bool = False) -> ProcessDefinition:
    """A copy of ``definition`` where each user task in a lane and without an assignee or candidate groups
    gets ``candidate_groups=[<lane name>]`` (every lane-bound user task with ``overwrite=True``; an assignee
    is kept then, as in Camunda a task may have both). Tasks outside lanes and other kinds are unchanged."""
    data = definition.model_dump(mode="json", exclude_defaults=False)

    def walk(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            lane = (node.get("metadata") or {}).get("lane")
            unassigned = not (node.get("assignee") or node.get("candidate_groups"))
            if node.get("kind") == "user_task" and isinstance(lane, str) and lane and (overwrite or unassigned):
                node["candidate_groups"] = [lane]
            if node.get("kind") in ("sub_process", "ad_hoc_sub_process"):
                walk(node.get("nodes") or [])

    walk(data["nodes"])
    return ProcessDefinition.model_validate(data)
