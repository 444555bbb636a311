"""`python -m services.cli`: the same as the `fleetgate` command."""

from services.cli import main

main()
