"""`nudge run`: a bad setting stops it before anything starts, and what it prints once up."""

from __future__ import annotations

import asyncio

from nudgelib.config import SERVICES
from nudgetools import local
from nudgetools.cluster import Cluster


def test_a_bad_setting_stops_nudge_run_before_the_database_starts(monkeypatch, capsys, tmp_path):
    async def no_database() -> str:
        raise AssertionError("nudge run started the database despite a bad setting")

    monkeypatch.setattr(local, "database_url", no_database)
    monkeypatch.setenv("NUDGE_DECISION_PORT", "fifty")
    assert asyncio.run(local.run_local(tmp_path)) == 2
    out = capsys.readouterr().out
    assert out.startswith("nudge run: configuration error:") and "NUDGE_DECISION_PORT" in out


def test_the_banner_gives_every_address_and_the_demo_keys():
    ports = {name: 51000 + i for i, name in enumerate(SERVICES)}
    cluster = Cluster(database_url="postgresql://x", internal_token="t" * 16, ports=ports,
                      metrics_ports={name: 9000 + i for i, name in enumerate(SERVICES)})
    text = local.banner(cluster, "app_1", {"admin": "nudge_a", "events": "nudge_e", "client": "nudge_c"})
    for i, name in enumerate(SERVICES):
        assert f"grpc 127.0.0.1:{51000 + i}" in text and f"http://127.0.0.1:{9000 + i}/metrics" in text
    assert "export NUDGE_ADMIN_KEY=nudge_a" in text and "export NUDGE_CLIENT_KEY=nudge_c" in text
    assert f"http://127.0.0.1:{ports['ingestion']}/nudge.ingestion.v1.IngestionService/TrackEvents" in text
