"""`nudge run --tls` as a user starts it: a local CA and certificates in the data folder,
mutual TLS between the processes, the edge on its TLS port only. The banner's commands work as
printed (over TLS, trusting the local CA), the `nudge` CLI works with the settings the banner
exports, and the supervisor's readiness checks speak TLS (a killed service is seen serving
again)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from nudgetools.cluster import REPO, free_ports
from tests.conftest import eventually, prepare_database
from tests.consoles import signs_in
from tests.e2e.test_local_run import alive, banner_commands, children, get_json, run_env, shell
from tests.web_site import built_site

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local_database(database_url) -> str:
    base, _, query = database_url.partition("?")
    url = f"{base.rsplit('/', 1)[0]}/nudge_local_run_tls" + (f"?{query}" if query else "")
    asyncio.run(prepare_database(url))
    return url


async def test_nudge_run_tls_encrypts_every_hop_and_its_banner_works_as_printed(local_database, tmp_path):
    built_site()  # as `make run` builds it before `nudge run`
    data_dir, ports = tmp_path / "data", free_ports(12)
    env = run_env(local_database, data_dir, ports)  # ports[10]: the demo shop's
    env["NUDGE_EDGE_TLS_PORT"] = str(ports[11])
    out, err = tmp_path / "run.out", tmp_path / "run.err"
    run = subprocess.Popen([sys.executable, "-m", "nudgetools.cli", "run", "--tls"], cwd=REPO, env=env,
                           stdout=open(out, "w"), stderr=open(err, "w"))
    try:
        async def banner() -> bool:
            assert run.poll() is None, err.read_text()
            return "Nudge is running." in out.read_text()

        await eventually(banner, timeout=90, interval=0.2)
        printed = out.read_text()
        tls_dir = data_dir / "tls"
        assert f"--cacert {tls_dir / 'ca.crt'}" in printed
        assert f"https://127.0.0.1:{ports[11]}/nudge.delivery.v1.DeliveryService/FetchMessages" in printed
        # The plaintext port is not opened beside the TLS one, and the demo page calls the TLS one.
        assert f"127.0.0.1:{ports[8]}" not in printed
        config = await asyncio.to_thread(get_json, f"http://127.0.0.1:{ports[10]}/config.json")
        assert config["endpoint"] == f"https://127.0.0.1:{ports[11]}"
        track_command, fetch_command = banner_commands(printed)
        assert json.loads(await asyncio.to_thread(shell, track_command, cwd=REPO)) == {"acceptedCount": 1}

        async def welcomed() -> bool:
            reply = json.loads(await asyncio.to_thread(shell, fetch_command, cwd=REPO))
            return [m["content"]["title"] for m in reply.get("messages", [])] == ["Welcome to Nudge!"]

        await eventually(welcomed, timeout=20, interval=0.3)
        # The CLI, with what the banner exports (the edge as its target, the local CA).
        exports = track_command.partition("; buf curl")[0]
        campaigns = await asyncio.to_thread(shell, f"{exports}; {sys.executable} -m nudgetools.cli campaigns list",
                                            cwd=REPO)
        assert "Welcome" in campaigns
        # The web console signs in through the TLS edge (trusting the local CA).
        admin_key = re.search(r"export NUDGE_ADMIN_KEY=(\S+)", printed).group(1)
        assert await signs_in(f"http://127.0.0.1:{env['NUDGE_CONSOLE_PORT']}", admin_key)

        # The supervisor's readiness check reaches a restarted service over mutual TLS.
        started = children(run.pid)
        os.kill(started["decision"], signal.SIGKILL)

        async def decision_back() -> bool:
            return "nudge run: decision is serving again" in err.read_text()

        await eventually(decision_back, timeout=60, interval=0.2)
        run.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(run.wait, 60) == 0, err.read_text()
    finally:
        left = children(run.pid)
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid in left.values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
