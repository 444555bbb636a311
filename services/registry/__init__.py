"""The registry (vehicles, Vehicle Access versions, filters, connections) and the Connect service, on Redis."""

from services.registry.connect import Authorization, ConnectService
from services.registry.store import Registry

__all__ = ["Authorization", "ConnectService", "Registry"]
