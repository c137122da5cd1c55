"""The client package's retry rules (nudge_client.retry) and how it prepares a write so that a
retry is recognised (nudge_client.rpcs.prepared)."""

from __future__ import annotations

import random
import uuid

import pytest

from nudge_client import rpcs
from nudge_client.protos import common, decision, ingestion
from nudge_client.retry import RetryPolicy

POLICY = RetryPolicy(max_attempts=4, initial_backoff=0.1, multiplier=2, max_backoff=0.3)


def test_unavailable_is_retried_with_jittered_backoff_that_grows_to_its_cap():
    rng = random.Random(7)
    for attempt, ceiling in ((1, 0.1), (2, 0.2), (3, 0.3)):
        waits = [POLICY.delay("UNAVAILABLE", attempt, None, rng) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert max(waits) - min(waits) > ceiling / 4  # jittered, not one fixed value


def test_the_servers_retry_info_is_waited_instead_of_the_backoff():
    assert POLICY.delay("UNAVAILABLE", 1, 2.5) == 2.5
    assert POLICY.delay("RESOURCE_EXHAUSTED", 1, 0.7) == 0.7
    # Advice past what the caller accepts to wait: give up rather than hang.
    assert POLICY.delay("UNAVAILABLE", 1, POLICY.max_advised_delay + 1) is None


def test_attempts_are_bounded():
    assert POLICY.delay("UNAVAILABLE", 3, None) is not None
    assert POLICY.delay("UNAVAILABLE", 4, None) is None
    assert RetryPolicy(max_attempts=1).delay("UNAVAILABLE", 1, 0.1) is None


@pytest.mark.parametrize("code", ["INVALID_ARGUMENT", "UNAUTHENTICATED", "INTERNAL", "DEADLINE_EXCEEDED",
                                  "RESOURCE_EXHAUSTED", "ABORTED", "NOT_FOUND"])
def test_other_codes_are_not_retried_without_cause(code):
    # RESOURCE_EXHAUSTED without RetryInfo is a limit, not a passing overload.
    assert POLICY.delay(code, 1, None) is None


def test_a_caller_may_add_codes_it_knows_are_safe():
    assert POLICY.delay("DEADLINE_EXCEEDED", 1, None, also=frozenset({"DEADLINE_EXCEEDED"})) is not None


def test_a_bad_policy_is_refused():
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(multiplier=0.5)


def test_a_write_gets_a_request_id_on_a_copy_and_keeps_one_the_caller_gave():
    mine = decision.SetCampaignStatusRequest(campaign_id="c1")
    sent = rpcs.prepared(rpcs.SET_CAMPAIGN_STATUS, mine, {})
    assert mine.request_id == "" and uuid.UUID(sent.request_id) and sent.campaign_id == "c1"
    assert rpcs.prepared(rpcs.SET_CAMPAIGN_STATUS, None, {"campaign_id": "c1"}).request_id
    given = decision.SetCampaignStatusRequest(campaign_id="c1", request_id="r-1")
    assert rpcs.prepared(rpcs.SET_CAMPAIGN_STATUS, given, {}).request_id == "r-1"


def test_events_without_ids_get_one_each_and_ids_given_are_kept():
    mine = ingestion.TrackEventsRequest(events=[common.Event(event_id="e1"), common.Event(), common.Event()])
    sent = rpcs.prepared(rpcs.TRACK_EVENTS, mine, {})
    ids = [e.event_id for e in sent.events]
    assert ids[0] == "e1" and len(set(ids)) == 3 and [e.event_id for e in mine.events] == ["e1", "", ""]


def test_reads_and_unsafe_calls_are_sent_as_given():
    read = decision.GetCampaignRequest(campaign_id="c1")
    assert rpcs.prepared(rpcs.GET_CAMPAIGN, read, {}) is read
    with pytest.raises(TypeError):
        rpcs.prepared(rpcs.GET_CAMPAIGN, read, {"campaign_id": "c2"})
    with pytest.raises(TypeError):
        rpcs.prepared(rpcs.GET_CAMPAIGN, decision.ListCampaignsRequest(), {})


def test_every_public_unary_rpc_is_wrapped_with_a_safety():
    wrapped = {(r.service, r.method) for r in vars(rpcs).values() if isinstance(r, rpcs.Rpc)}
    services = {"ingestion": ingestion, "decision": decision}
    from nudge_client.protos import api_keys, delivery, segmentation, user_token_keys
    services.update(delivery=delivery, segmentation=segmentation)
    declared = set()
    # Decision hosts ApiKeyService and UserTokenKeyService too.
    for module in (api_keys, user_token_keys):
        for service in module.DESCRIPTOR.services_by_name.values():
            declared |= {("decision", m.name) for m in service.methods}
    for name, module in services.items():
        for service in module.DESCRIPTOR.services_by_name.values():
            declared |= {(name, m.name) for m in service.methods if not (m.client_streaming or m.server_streaming)}
    assert wrapped == declared
