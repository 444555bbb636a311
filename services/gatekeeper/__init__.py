"""The gatekeeper: the consumer group `gatekeeper` on every shard's `{prefix}:requests` that decides each request.

A worker (`worker.py`, `Gatekeeper` and `serve()`) reads a batch with one XREADGROUP, turns each entry into a
request or the reason it is REJECTED (`intake.py`), looks up the connections and vehicles it names (`cache.py`, a
cache over the registry that connection events invalidate), decides each with the pure `schemas.decision.decide()`,
encodes the decisions (`schemas/outbound.py`) and commits the batch with one Lua script that records each request
id, publishes each new decision and acknowledges every entry (`scripts.py`): three round trips per batch, whatever
its size, over a RESP transport of its own (`resp.py`). Beside that loop each worker follows the connection events,
reclaims entries idle too long (dead-lettering those delivered too often), trims and beats (`upkeep.py`).
`app.py` hosts it as a FastStream application (its AsyncAPI document is services/asyncapi.py); `processes.py` runs one
worker or supervises several (`python -m services.gatekeeper --workers N`, `fleetgate gatekeeper run`).
"""
