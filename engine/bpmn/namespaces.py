"""XML namespaces: the OMG BPMN 2.0 ones, the vendor ones we read, and our own.

Our extension namespace carries every field of the process model that BPMN has no element for
(agent, retry policy, SLA, form, declared variables, ...). It lives inside ``bpmn:extensionElements``,
which the OMG schema accepts from any other namespace, so exported files stay schema-valid.
"""

from __future__ import annotations

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
WAOOAW = "https://waooaw.dev/schema/bpmn/1.0"

CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
ACTIVITI = "http://activiti.org/bpmn"
FLOWABLE = "http://flowable.org/bpmn"
ZEEBE = "http://camunda.org/schema/zeebe/1.0"

# Camunda 7, Activiti and Flowable share attribute names (assignee, candidateGroups, class, ...).
CAMUNDA_LIKE = (CAMUNDA, ACTIVITI, FLOWABLE)
VENDOR_PREFIX = {CAMUNDA: "camunda", ACTIVITI: "activiti", FLOWABLE: "flowable", ZEEBE: "zeebe"}

# The prefixes bpmn.io and Camunda Modeler write; tools recognise files more readily with them.
NSMAP = {"bpmn": BPMN, "bpmndi": BPMNDI, "dc": DC, "di": DI, "xsi": XSI, "waooaw": WAOOAW, "camunda": CAMUNDA}

TARGET_NAMESPACE = "https://waooaw.dev/processes"


def q(ns: str, local: str) -> str:
    """Clark notation ``{ns}local`` as lxml uses it."""
    return f"{{{ns}}}{local}"


def b(local: str) -> str:
    return q(BPMN, local)
