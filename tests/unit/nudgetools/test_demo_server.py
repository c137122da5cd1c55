"""The demo shop's backend (nudgetools.demo_server) on a real port: the page's files and
nothing outside them, its configuration, and user tokens the services' rules accept."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from nudgelib.config import SERVICES, ConfigError
from nudgelib.user_tokens import RegisteredKey, TokenRules, load_key, parse_public_key, verify
from nudgetools import demo_server, local
from nudgetools.cluster import Cluster
from nudgetools.edge import Edge
from tests.signing import SigningKey


@pytest.fixture
def served(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>shop</title>")
    (site / "shop.js").write_text("export {};")
    (tmp_path / "secret.txt").write_text("not for the page")
    key = SigningKey("ES256", kid="demo-shop", private=ec.generate_private_key(ec.SECP256R1()))
    key_file = tmp_path / "key.pem"
    key_file.write_text(key.private_pem)
    settings = demo_server.ServerSettings.from_env({
        "NUDGE_DEMO_SITE": str(site), "NUDGE_DEMO_ENDPOINT": "http://127.0.0.1:8080",
        "NUDGE_DEMO_API_KEY": "nudge_pub_x", "NUDGE_DEMO_SIGNING_KEY_FILE": str(key_file),
        "NUDGE_DEMO_SIGNING_KID": "demo-shop"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), demo_server.handler(demo_server.Site(settings)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", key
    finally:
        server.shutdown()
        server.server_close()


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def test_the_page_its_configuration_and_nothing_outside_the_site(served):
    url, _ = served
    assert get(f"{url}/")[:2] == (200, "text/html; charset=utf-8")
    status, kind, body = get(f"{url}/shop.js")
    assert (status, kind, body) == (200, "text/javascript; charset=utf-8", b"export {};")
    assert json.loads(get(f"{url}/config.json")[2]) == {"endpoint": "http://127.0.0.1:8080", "apiKey": "nudge_pub_x"}
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/missing.js"):
        assert get(f"{url}{path}")[0] == 404, path
    assert get(f"{url}/healthz")[0] == 200


def test_a_token_is_one_the_services_accept_for_that_user(served):
    url, key = served
    status, _, body = get(f"{url}/token?user=ada%40example.com")
    assert status == 200
    answer = json.loads(body)
    assert answer["expires_in"] == demo_server.TOKEN_LIFETIME_SECONDS
    parsed = parse_public_key(key.public_pem, "demo-shop")
    registered = RegisteredKey(parsed.kid, parsed.algorithm, parsed.public_key_pem, revoked=False)
    keys = {"demo-shop": (registered, load_key(registered))}
    verified = verify(answer["token"], keys, "app_1", time.time(), TokenRules())
    assert verified.user_id == "ada@example.com"


@pytest.mark.parametrize("query", ["", "?user=", "?user=" + "x" * 257])
def test_a_token_needs_a_user_id_the_services_take(served, query):
    url, _ = served
    status, _, body = get(f"{url}/token{query}")
    assert (status, json.loads(body)) == (400, {"error": "user must be 1 to 256 characters"})


def test_a_missing_setting_is_named():
    with pytest.raises(ConfigError, match="NUDGE_DEMO_ENDPOINT"):
        demo_server.ServerSettings.from_env({})


def test_the_banner_gives_the_shop_address_or_why_it_is_not_served(tmp_path):
    ports = {name: 51000 + i for i, name in enumerate(SERVICES)}
    cluster = Cluster(database_url="postgresql://x", internal_token="t" * 16, ports=ports,
                      metrics_ports={name: 9000 + i for i, name in enumerate(SERVICES)},
                      edge=Edge(8080, 9901, tmp_path / "envoy.yaml"))
    keys = {"admin": "nudge_a", "events": "nudge_e", "client": "nudge_c", "public": "nudge_p"}
    skipped = local.banner(cluster, "app_1", keys, "clients/web/dist/demo is not built (…)")
    assert "  demo shop       not served: clients/web/dist/demo is not built (…)" in skipped.splitlines()
    assert "  export NUDGE_PUBLIC_KEY=nudge_p" in skipped.splitlines()
    cluster.sidecars["demo"] = demo_server.sidecar("0.0.0.0", 8070, "http://127.0.0.1:8080", "nudge_p",
                                                   tmp_path / "key.pem", "demo-shop")
    served = local.banner(cluster, "app_1", keys)
    assert any(line.startswith("  demo shop       http://127.0.0.1:8070/   (sign up") for line in served.splitlines())


def test_a_list_of_allowed_origins_takes_the_shop_page_too(monkeypatch):
    shop = demo_server.DemoSettings(bind_host="0.0.0.0", port=8070)
    monkeypatch.setattr(local, "site_built", lambda: True)
    assert local.with_shop(("*",), shop) == ("*",)
    assert local.with_shop(("https://shop.example",), shop) == ("https://shop.example", "http://127.0.0.1:8070")
    monkeypatch.setattr(local, "site_built", lambda: False)
    assert local.with_shop(("https://shop.example",), shop) == ("https://shop.example",)
