"""`python -m fleetgate`: the same as the `fleetgate` command."""

from fleetgate import main

main()
