"""The root exception of `services`, under the project's one root (schemas.errors.FleetgateError), and its
specialisations: the `fleetgate` command reports any FleetgateError as one line, never a traceback."""

from __future__ import annotations

from schemas.errors import FleetgateError


class ServiceError(FleetgateError):
    """Root of every error raised by `services`."""


class NotFoundError(ServiceError):
    """A vehicle, connection or config version the registry does not hold."""


class RevokedError(ServiceError):
    """The connection is revoked; revocation is final."""


class ConfigFileError(ServiceError):
    """A Vehicle Access config file that cannot be read or does not validate; the message names the line or key."""


class EvictionPolicyError(ServiceError):
    """The Redis server evicts keys (its `maxmemory-policy` is not noeviction) and the settings do not allow it."""


class RedisUnavailableError(ServiceError):
    """Redis cannot be reached; the message names the server without its password."""


class AuditStoreError(ServiceError):
    """The audit database cannot be opened, read or written; the message names the file."""


class ConnectionLimitError(ServiceError):
    """A Redis server cannot take the connections a worker needs (its `maxclients`, less the clients it has)."""
