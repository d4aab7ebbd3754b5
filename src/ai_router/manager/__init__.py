"""The manager: a small local model proposes a routing decision; heuristics stand in."""

from .core import Manager, ManagerResult
from .fallback import fallback_decision

__all__ = ["Manager", "ManagerResult", "fallback_decision"]
