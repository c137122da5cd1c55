"""Where `nudge apply` and the other operator commands connect (--target / NUDGE_TARGET)."""

from __future__ import annotations

import pytest

from nudgetools.operate.target import TargetError, client, parse_target


def test_unset_is_make_runs_ports():
    assert parse_target("") == {"ingestion": "127.0.0.1:50051", "segmentation": "127.0.0.1:50052",
                                "decision": "127.0.0.1:50053", "delivery": "127.0.0.1:50054"}


def test_one_address_is_an_edge_for_every_service():
    assert parse_target(" edge.example:8080 ") == "edge.example:8080"


def test_each_service_may_have_its_own_address():
    assert parse_target("decision=10.0.0.3:50053, segmentation=10.0.0.2:50052") == {
        "decision": "10.0.0.3:50053", "segmentation": "10.0.0.2:50052"}


@pytest.mark.parametrize("text, message", [
    ("decisions=h:1", "'decisions=h:1' is not SERVICE=HOST:PORT"),
    ("decision=", "'decision=' is not SERVICE=HOST:PORT"),
    ("decision=a:1,decision=b:2", "decision is given twice"),
])
def test_a_bad_target_is_one_line_naming_the_part(text, message):
    with pytest.raises(TargetError, match=message):
        parse_target(text)


def test_without_an_admin_key_nothing_is_built(monkeypatch):
    monkeypatch.delenv("NUDGE_ADMIN_KEY", raising=False)
    with pytest.raises(TargetError, match="NUDGE_ADMIN_KEY is not set"):
        client(None, 10)
