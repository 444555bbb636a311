"""fleetgate's domain: the catalog, Vehicle Access, scopes, grants, `decide()` and the message contract.

Pure: no I/O beyond reading the packaged catalog, no Redis.
"""
