"""The registry (applications, vehicles, Vehicle Access versions, filters, connections, tokens) and the Connect
service, on Redis."""

from services.registry.apps import AppStore, CreatedApp
from services.registry.connect import Authorization, ConnectService
from services.registry.store import Registry
from services.registry.tokens import TokenGrant, TokenLifetimes, TokenPair, TokenStore

__all__ = [
    "AppStore",
    "Authorization",
    "ConnectService",
    "CreatedApp",
    "Registry",
    "TokenGrant",
    "TokenLifetimes",
    "TokenPair",
    "TokenStore",
]
