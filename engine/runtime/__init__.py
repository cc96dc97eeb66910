"""The engine shell: SQLModel persistence, clocks, agents, jobs and workers around the pure core."""

from engine.runtime.agents import AgentContext, BpmnError, call_agent
from engine.runtime.clock import Clock, RealClock, VirtualClock
from engine.runtime.engine import Engine, EngineError, FormError, InstanceView

__all__ = ["AgentContext", "BpmnError", "Clock", "Engine", "EngineError", "FormError", "InstanceView", "RealClock",
           "VirtualClock", "call_agent"]
