"""What a public key may call, and whose data each request names (nudgelib.public_clients)."""

from __future__ import annotations

from google.protobuf import descriptor_pool

from nudge.common.v1 import common_pb2
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from nudgelib import public_clients


def test_exactly_five_rpcs_are_open_to_public_keys():
    assert {m.rsplit("/", 1)[-1] for m in public_clients.PUBLIC_METHODS} == {
        "FetchMessages", "Subscribe", "ReportInteraction", "TrackEvents", "Identify"}
    assert not public_clients.is_public_method("/nudge.ingestion.v1.IngestionService/StreamEvents")
    assert not public_clients.is_public_method("/nudge.ingestion.v1.IngestionService/DeleteUser")


def test_every_user_a_request_names_must_be_the_tokens():
    fetch = "/nudge.delivery.v1.DeliveryService/FetchMessages"
    assert public_clients.other_user(fetch, delivery_pb.FetchMessagesRequest(user_id="u"), "u") is None
    assert public_clients.other_user(fetch, delivery_pb.FetchMessagesRequest(user_id="v"), "u") == "v"
    assert public_clients.other_user(fetch, delivery_pb.FetchMessagesRequest(), "u") == ""

    track = "/nudge.ingestion.v1.IngestionService/TrackEvents"
    mine = [common_pb2.Event(event_id=f"e{i}", user_id="u", name="x") for i in range(3)]
    assert public_clients.other_user(track, ingestion_pb.TrackEventsRequest(events=mine), "u") is None
    mixed = [*mine, common_pb2.Event(event_id="e9", user_id="v", name="x")]
    assert public_clients.other_user(track, ingestion_pb.TrackEventsRequest(events=mixed), "u") == "v"


def test_each_open_rpc_exists_and_takes_one_request_naming_its_user():
    # The user check reads the whole request before the handler runs: no request streams.
    pool = descriptor_pool.Default()
    for method in public_clients.PUBLIC_METHODS:
        service, name = method.strip("/").split("/")
        found = pool.FindServiceByName(service).FindMethodByName(name)
        assert found is not None and not found.client_streaming, method
        fields = found.input_type.fields_by_name
        assert "user_id" in fields or fields["events"].message_type.fields_by_name["user_id"], method
