"""The `fleetgate` command line."""

from __future__ import annotations

import typer

from fleetgate import (
    access,
    apps,
    catalog,
    connect,
    contract,
    deadletter,
    demo,
    filters,
    gatekeeper,
    insights,
    serve,
    simulate,
    vehicle_faults,
    vehicle_scenario,
    vehicle_sim,
    vehicles,
    webhooks,
    webhooks_worker,
)
from fleetgate._output import reporting_errors
from fleetgate.consumers import audit_app, tail_command, usage_app

app = typer.Typer(
    name="fleetgate",
    help="Least-privilege gatekeeping for connected-vehicle signals and commands.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(access.app, name="access")
access.app.command("advise")(insights.advise_command)
access.app.command("whatif")(insights.whatif_command)
app.add_typer(apps.app, name="apps")
app.add_typer(catalog.app, name="catalog")
app.add_typer(contract.app, name="contract")
app.add_typer(vehicles.app, name="vehicles")
vehicles.app.command("serve")(vehicle_sim.serve_command)
vehicles.app.command("check")(vehicle_sim.check_command)
vehicles.app.command("state")(vehicle_sim.state_command)
vehicles.app.command("set")(vehicle_sim.set_command)
vehicles.app.command("fault")(vehicle_faults.fault_command)
vehicles.app.command("faults")(vehicle_faults.faults_command)
vehicles.app.command("run")(vehicle_scenario.run_command)
app.add_typer(connect.app, name="connect")
app.add_typer(filters.app, name="filters")
app.add_typer(gatekeeper.app, name="gatekeeper")
app.add_typer(deadletter.app, name="deadletter")
app.add_typer(simulate.app, name="simulate")
app.command("loadtest")(simulate.loadtest_command)
app.command("tail")(tail_command)
app.add_typer(audit_app, name="audit")
app.add_typer(usage_app, name="usage")
app.command("demo")(demo.demo_command)
app.command("serve")(serve.serve_command)
app.add_typer(webhooks.app, name="webhooks")
webhooks.app.command("run")(webhooks_worker.run_command)
webhooks.app.command("deliveries")(webhooks_worker.deliveries_command)


def main() -> None:
    with reporting_errors():
        app()
