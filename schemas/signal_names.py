"""How Smartcar spells a signal's name and group in v3 resources and webhook payloads ("StateOfCharge",
"TractionBattery"): one rule for both."""

from __future__ import annotations

from schemas.catalog import Signal

GROUP_NAMES = {
    "tractionbattery": "TractionBattery",
    "internalcombustionengine": "InternalCombustionEngine",
    "lowvoltagebattery": "LowVoltageBattery",
    "connectivitystatus": "ConnectivityStatus",
    "connectivitysoftware": "ConnectivitySoftware",
    "vehicleidentification": "VehicleIdentification",
    "vehicleuseraccount": "VehicleUserAccount",
    "hvac": "HVAC",
}
"""A group's display name where it is not the code's prefix capitalized (real: "Charge", "TractionBattery")."""


def group_name(signal: Signal) -> str:
    return GROUP_NAMES.get(signal.group, signal.group.capitalize())


def signal_name(signal: Signal) -> str:
    """ "State of Charge" -> "StateOfCharge", as the real responses spell names."""
    return "".join(word[:1].upper() + word[1:] for word in signal.name.replace("-", " ").split())
