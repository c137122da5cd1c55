"""gRPC-Web framing as the web SDK's transport reads it: a data frame, then trailers."""

from __future__ import annotations

from console.grpcweb import response


def test_a_response_is_a_data_frame_then_trailers_and_an_error_has_no_data():
    body = response(b"\x0a\x01x")
    assert body[:5] == b"\x00\x00\x00\x00\x03" and body[5:8] == b"\x0a\x01x"
    trailers = body[8:]
    assert trailers[0] == 0x80 and int.from_bytes(trailers[1:5], "big") == len(trailers) - 5
    assert trailers[5:] == b"grpc-status:0\r\ngrpc-message:\r\n"
    failed = response(b"ignored", 16, "session ended: 100% gone é")
    assert failed[0] == 0x80
    assert failed[5:] == b"grpc-status:16\r\ngrpc-message:session ended: 100%25 gone %C3%A9\r\n"
