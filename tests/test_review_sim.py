"""Review: the simulator's servers refuse bad addresses and requests with their own messages."""

from __future__ import annotations

import pytest

from kcockpit.cli import CliError
from kcockpit.sim import cli as sim_cli
from kcockpit.sim.clock import ManualClock
from kcockpit.sim.scenario import Scenario
from kcockpit.sim.server import ObserverServer
from kcockpit.sim.traffic import Simulator
from kcockpit.sim.world import World


def test_demo_server_addresses_with_non_ascii_digits_are_refused_with_the_usual_message() -> None:
    with pytest.raises(CliError, match="is not HOST:PORT"):
        sim_cli._host_port("127.0.0.1:²", "--listen")
    clock = ManualClock()
    server = ObserverServer(Simulator(World.build(3), seed=1, clock=clock, scenario=Scenario(clock, mode="healthy")), auto_pump=False)
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        server.start("127.0.0.1:²")


def test_the_simulated_kube_api_refuses_a_malformed_watch_resource_version(tmp_path) -> None:
    import json
    import urllib.error
    import urllib.request

    from kcockpit.sim.kube_api import start_kube_api

    api = start_kube_api(World.build(3), phase="healthy")
    try:
        for query in ("resourceVersion=abc", "resourceVersion=%C2%B2", "resourceVersion=1&timeoutSeconds=x"):
            url = f"{api.url}/api/v1/pods?watch=true&{query}"
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(url, timeout=5)
            assert caught.value.code == 400, query
            assert json.loads(caught.value.read())["reason"] == "BadRequest"
    finally:
        api.stop()
