"""The client package installs on its own: into a fresh virtualenv, with its pinned
dependencies from the package index and nothing of the repository, it imports and talks to the
real services. (Needs the package index, as `make test`'s first run does.)"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path

import asyncpg
import pytest

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "python"

SCRIPT = textwrap.dedent("""
    import asyncio, importlib.util, json, sys
    import nudge_client
    from nudge_client import AsyncNudge, EventProducer, Nudge
    from nudge_client.protos import decision

    targets, admin, events = json.loads(sys.argv[1])
    # The monorepo's packages are not there: everything came with the client.
    present = [name for name in ("nudge", "nudgelib", "services") if importlib.util.find_spec(name)]
    with Nudge(targets, admin) as nudge:
        listed = nudge.list_campaigns(status=decision.CAMPAIGN_STATUS_ACTIVE)

    async def produce():
        async with AsyncNudge(targets, events) as client:
            async with EventProducer(client) as producer:
                future = await producer.send(user_id="installed", name="signup")
            return (await future).event_id

    print(json.dumps({"file": nudge_client.__file__, "present": present,
                      "campaigns": len(listed.campaigns), "event_id": asyncio.run(produce())}))
""")


async def run(*argv: str, cwd: Path) -> str:
    process = await asyncio.create_subprocess_exec(*argv, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, f"{argv[:3]} failed:\n{err.decode()[-3000:]}"
    return out.decode()


# A virtualenv and a pip install from the index: about 15 s on a quiet machine, past the
# suite's 120 s default on a loaded one.
@pytest.mark.timeout(360)
async def test_the_package_installs_into_a_fresh_venv_and_calls_the_services(stack, app, tmp_path, database_url):
    venv = tmp_path / "venv"
    await run(sys.executable, "-m", "venv", str(venv), cwd=tmp_path)
    python = str(venv / "bin" / "python")
    await run(python, "-m", "pip", "install", "--disable-pip-version-check", "-q", str(CLIENT), cwd=tmp_path)
    targets = {name: stack.target(name) for name in ("ingestion", "segmentation", "decision", "delivery")}
    # -I: neither the working directory nor PYTHONPATH is on the path.
    out = await run(python, "-I", "-c", SCRIPT, json.dumps([targets, app.keys["admin"], app.keys["events"]]),
                    cwd=tmp_path)
    report = json.loads(out.strip().splitlines()[-1])
    assert Path(report["file"]).is_relative_to(venv)
    assert report["present"] == [] and report["campaigns"] == 0 and report["event_id"]
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM ingestion.events WHERE app_id = $1 AND event_id = $2",
                                     app.id, report["event_id"])
    finally:
        await conn.close()
    assert stored == 1
