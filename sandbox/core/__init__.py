"""What every emulator shares: call counting, fault injection, control routes, servers, TLS."""

from sandbox.core.calls import CallLog
from sandbox.core.clock import Clock
from sandbox.core.faults import FaultBook, FaultRule
from sandbox.core.service import EmulatedService

__all__ = ["CallLog", "Clock", "EmulatedService", "FaultBook", "FaultRule"]
