"""Data the simulated vehicles are made of: home cities, and per model the battery, tank and consumption.

Plain tables, one place: profile.py draws each vehicle's constants from them. A model not listed here gets its
powertrain's default.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class City:
    name: str
    lat: float
    lon: float
    utc_offset_h: int
    """Standard time (no daylight saving): enough to put trips in the local daytime."""
    region: str
    """"NA" or "EU": connector type, currency."""
    mean_c: float
    """Annual mean temperature, degrees Celsius."""
    swing_c: float
    """Half the difference between the July and January means."""
    currency: str


CITIES: tuple[City, ...] = (
    City("Toronto", 43.6532, -79.3832, -5, "NA", 9.0, 13.0, "CAD"),
    City("New York", 40.7128, -74.0060, -5, "NA", 13.0, 12.0, "USD"),
    City("Chicago", 41.8781, -87.6298, -6, "NA", 10.0, 14.0, "USD"),
    City("Austin", 30.2672, -97.7431, -6, "NA", 21.0, 9.0, "USD"),
    City("Denver", 39.7392, -104.9903, -7, "NA", 10.0, 11.0, "USD"),
    City("Seattle", 47.6062, -122.3321, -8, "NA", 11.0, 7.0, "USD"),
    City("San Francisco", 37.7749, -122.4194, -8, "NA", 15.0, 4.0, "USD"),
    City("Los Angeles", 34.0522, -118.2437, -8, "NA", 18.0, 5.0, "USD"),
    City("Amsterdam", 52.3676, 4.9041, 1, "EU", 10.0, 7.0, "EUR"),
    City("Berlin", 52.5200, 13.4050, 1, "EU", 10.0, 9.0, "EUR"),
    City("Munich", 48.1351, 11.5820, 1, "EU", 9.0, 9.0, "EUR"),
    City("Oslo", 59.9139, 10.7522, 1, "EU", 6.0, 10.0, "NOK"),
)

# What a kWh costs, per currency (home charging, a range drawn per vehicle).
PRICE_PER_KWH = {"USD": (0.11, 0.22), "CAD": (0.08, 0.16), "EUR": (0.25, 0.40), "NOK": (1.2, 2.8)}

# Usable traction battery capacities (kWh) a model is sold with; one is drawn per vehicle.
BATTERY_KWH: dict[str, tuple[float, ...]] = {
    "Model 3": (57.5, 75.0),
    "Model Y": (75.0,),
    "Model S": (100.0,),
    "Mustang Mach-E": (70.0, 91.0),
    "bZ4X": (71.4,),
    "Prologue": (85.0,),
    "Ioniq 5": (58.0, 77.4),
    "i4": (81.5,),
    "ID.4": (62.0, 82.0),
    "Bolt EV": (65.0,),
    "Leaf": (40.0, 62.0),
    "EV6": (58.0, 77.4),
    "Escape Plug-in Hybrid": (14.4,),
    "RAV4 Prime": (18.1,),
    "Tucson Plug-in Hybrid": (13.8,),
    "X5 xDrive50e": (25.7,),
    "Volt": (18.4,),
}
DEFAULT_BATTERY_KWH = {"BEV": (60.0, 75.0, 82.0, 100.0), "PHEV": (12.0, 16.0, 18.0)}

# Fuel tank (litres) per model.
TANK_L: dict[str, float] = {
    "F-150": 87.0,
    "Silverado": 91.0,
    "Escape": 57.0,
    "Camry": 60.0,
    "Corolla": 50.0,
    "Civic": 47.0,
    "CR-V": 53.0,
    "Elantra": 47.0,
    "3 Series": 59.0,
    "Golf": 50.0,
    "Tiguan": 58.0,
    "Equinox": 56.0,
    "Rogue": 55.0,
    "Sportage": 54.0,
    "Maverick Hybrid": 52.0,
    "Prius": 43.0,
    "RAV4 Hybrid": 55.0,
    "Accord Hybrid": 48.0,
    "Tucson Hybrid": 52.0,
    "Niro Hybrid": 45.0,
    "Escape Plug-in Hybrid": 42.0,
    "RAV4 Prime": 55.0,
    "Tucson Plug-in Hybrid": 42.0,
    "X5 xDrive50e": 69.0,
    "Volt": 34.0,
}
DEFAULT_TANK_L = {"ICE": 55.0, "HEV": 45.0, "PHEV": 45.0}

# Fuel consumption (litres per 100 km): a range per powertrain, trucks above it.
CONSUMPTION_L_100KM = {"ICE": (7.0, 11.0), "HEV": (4.4, 5.6), "PHEV": (6.0, 7.5)}
TRUCKS = frozenset({"F-150", "Silverado"})
TRUCK_CONSUMPTION_L_100KM = (12.0, 14.5)
# Electric efficiency (km per kWh).
KM_PER_KWH = {"BEV": (5.2, 7.0), "PHEV": (4.2, 5.4)}

EXTERIOR_COLORS = ("Pearl White", "Solid Black", "Midnight Silver", "Deep Blue", "Red Multi-Coat", "Quicksilver")
TRIMS = ("Standard", "Long Range", "Premium", "Sport", "Limited", "Touring")
PACKAGES = ("Cold Weather", "Tow", "Technology", "Driver Assistance", "Premium Audio", "Panoramic Roof")
WHEEL_STYLES = ('18" Aero', '19" Sport', '20" Induction', '17" Alloy', '21" Arachnid')
FIRST_NAMES = ("Blue", "Betty", "Rocket", "Daily", "Voyager", "Comet", "Rover", "Pebble")
# Smartcar's drive-mode body: a canonical mode and the make's own name for it.
DRIVE_MODES = (("NORMAL", "Standard"), ("COMFORT", "Comfort"), ("ECO", "Eco"), ("SPORT", "Sport"))
OEM_PERMISSIONS = ("remote_lock", "remote_unlock", "remote_climate", "vehicle_location", "remote_charge")
