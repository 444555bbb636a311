"""The one root exception of `services`, and its specialisations."""

from __future__ import annotations


class ServiceError(Exception):
    """Root of every error raised by `services`."""


class NotFoundError(ServiceError):
    """A vehicle, connection or config version the registry does not hold."""


class RevokedError(ServiceError):
    """The connection is revoked; revocation is final."""


class ConfigFileError(ServiceError):
    """A Vehicle Access config file that cannot be read or does not validate; the message names the line or key."""


class RedisUnavailableError(ServiceError):
    """Redis cannot be reached; the message names the server without its password."""
