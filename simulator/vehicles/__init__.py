"""The simulated vehicles' state model: pure functions over small serializable states, deterministic per seed.

No I/O, no Redis, no asyncio. The vehicles service loads a vehicle's encoded state, calls one of these, and
stores the new state with the response:

- `initial_state(vehicle, seed, now)`: the vehicle at `now`, the same for the same arguments on any machine.
- `advance(state, vehicle, now, seed)`: lazy evolution to `now`: trips, charging, sleep, coverage (life.py).
- `read_signal(state, vehicle, code, now)`: a SignalReading (Smartcar's v3 body) or a VehicleProblem (read.py).
- `execute(state, vehicle, command, params, now)`: (new state, CommandResult or VehicleProblem) (commands.py).
- `set_value(state, vehicle, code, value, now)` and `set_remote_access(...)`: by hand, for faults (overrides.py).
- `VehicleState.encode()` / `VehicleState.decode(data)`: a few hundred bytes of JSON (state.py).

Faults (faults.py: injected errors and delays, decided per request without chance) and what a scenario makes happen
to a vehicle (scripted.py) are pure too; answer.py applies both models to one decision, and the modules around it
(service, respond, store, delays, scenario_run) are the part with Redis.

Decisions, Smartcar-like:
- **Time** only moves forward: a call with `now` before the state's `at` acts at `at`. read_signal, execute and
  set_value advance the state to `now` themselves (with the seed the state remembers), so the service need not
  call advance() first; execute and set_value return the advanced state.
- **Asleep**: a vehicle parked without charging or climate falls asleep its profile's delay (15-45 min) after
  its last activity. A read of an asleep vehicle is refused with VEHICLE_STATE/ASLEEP carrying the value as of
  when it fell asleep (Smartcar: "this request was not sent to preserve battery life"), and does not wake it.
  A command wakes it (Smartcar sends commands, waking the vehicle) and then runs, so reads succeed for the next
  sleep delay. Parked vehicles spend most of the day asleep: most reads of a parked vehicle answer ASLEEP.
- **Offline**: a parked vehicle is sometimes out of coverage (a planned gap of 10-90 minutes on about one day in
  five), or is forced offline by hand (set_value on the connectivity status it reports). Reads answer
  UNREACHABLE with the last value; commands answer UNREACHABLE.
- **Cloud signals** (signals.toml: source "cloud": identity, connectivity status, account, service, battery
  capacity, configuration) are answered whatever the vehicle's state, so whether it is asleep or online reads.
- **Commands without a simulated effect**: commands.NO_SIMULATED_EFFECT (PIN to Drive: no signal reports it).
"""

from simulator.vehicles.clock import SimClock
from simulator.vehicles.commands import NO_SIMULATED_EFFECT, execute
from simulator.vehicles.life import advance, initial_state
from simulator.vehicles.overrides import set_remote_access, set_value, settable
from simulator.vehicles.read import read_signal
from simulator.vehicles.results import CommandResult, SignalReading, VehicleProblem
from simulator.vehicles.state import VehicleState

__all__ = [
    "NO_SIMULATED_EFFECT",
    "CommandResult",
    "SignalReading",
    "SimClock",
    "VehicleProblem",
    "VehicleState",
    "advance",
    "execute",
    "initial_state",
    "read_signal",
    "set_remote_access",
    "set_value",
    "settable",
]
