"""Event logs for process mining, the same for simulated and live instances (IEEE 1849-2016 XES names).

Two shapes of one log:

- the **activity log**: one row per activity activation (and per timer or message wait), with its
  ``enabled_timestamp``, ``start_timestamp`` and end (``time:timestamp``), ``waiting_s`` and ``working_s``:
  what KPIs and interval-aware miners read;
- the **event log**: one row per lifecycle transition of the XES standard lifecycle model
  (``schedule`` for user tasks, ``start``, then ``complete``, ``ate_abort`` for work that failed or was
  cancelled after it started, ``withdraw`` for work cancelled before anyone took it): what pm4py,
  ProM, Disco or Celonis read, written as CSV or XES (:func:`write_xes`).

Naming (one scheme in both logs, simulated or live):

- ``concept:name`` is the node's BPMN name (``name``, else its id, exactly what the BPMN export writes);
  a compensation handler's activation is ``"Undo: <name of the activity it undoes>"``;
- ``org:resource`` is who did the work: a person by their user id (the simulator names people
  ``<pool>#<n>``, e.g. ``marketing-lead#1``) or an agent as ``agent:<handler>`` (e.g.
  ``agent:designs.agents:create_content``); ``org:group`` is the pool, user or group the work was offered to;
- ``concept:instance`` pairs the transitions of one activation (``<node id>#<n>`` within the case).
"""

from engine.eventlog.log import (
    ACTIVITY_COLUMNS,
    EVENT_COLUMNS,
    activity_label,
    agent_resource,
    transitions,
)
from engine.eventlog.xes import read_xes_traces, write_csv, write_xes

__all__ = ["ACTIVITY_COLUMNS", "EVENT_COLUMNS", "activity_label", "agent_resource", "read_xes_traces",
           "transitions", "write_csv", "write_xes"]
