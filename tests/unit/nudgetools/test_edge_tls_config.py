"""The edge's TLS variants: Envoy accepts them (with real certificate files), the listener is TLS
only with h2 and http/1.1 by ALPN, and every cluster talks to its replicas over mutual TLS
checking the service's name. The committed TLS rendering (compose, Kubernetes) is current."""

from __future__ import annotations


import pytest
import yaml

from nudgelib.config import SERVICES, TlsSettings
from nudgetools import certs, edge
from tests.unit.nudgetools.test_edge_config import envoy_validates

ADDRESSES = {name: [f"127.0.0.1:{50051 + i}"] for i, name in enumerate(SERVICES)}


@pytest.fixture(scope="module")
def issued(tmp_path_factory) -> certs.LocalCerts:
    return certs.issue(tmp_path_factory.mktemp("tls"), names=("edge", "public"))


def static_tls(c: certs.LocalCerts) -> str:
    return edge.render_static(ADDRESSES, "127.0.0.1", 18443, 19901, edge_tls=(str(c.cert("public")), str(c.key("public"))),
                              upstream_tls=TlsSettings(str(c.cert("edge")), str(c.key("edge")), str(c.ca)))


def test_envoy_accepts_the_static_tls_variant(issued, tmp_path):
    envoy_validates(static_tls(issued), tmp_path)


def test_envoy_accepts_the_committed_tls_variant_given_its_files(issued, tmp_path):
    """The dns TLS variant names the files where compose and Kubernetes mount them; here they
    are put in a folder of the test's."""
    text = edge.COMMITTED_TLS[0].read_text()
    files = {"/etc/nudge/edge-tls/tls.crt": issued.cert("public"), "/etc/nudge/edge-tls/tls.key": issued.key("public"),
             "/etc/nudge/tls/tls.crt": issued.cert("edge"), "/etc/nudge/tls/tls.key": issued.key("edge"),
             "/etc/nudge/tls/ca.crt": issued.ca}
    assert set(files) == set(edge.TLS_FILES.values())
    files[edge.MOUNTED_DESCRIPTOR_SET] = edge.DESCRIPTOR_SET  # the transcoder's, mounted beside the config
    for mounted, local in files.items():
        assert mounted in text
        text = text.replace(mounted, str(local))
    envoy_validates(text, tmp_path)


def test_the_committed_tls_variants_are_current():
    assert not [p for p in edge.stale() if p in edge.COMMITTED_TLS], "run `python -m nudgetools.edge`"
    assert edge.COMMITTED_TLS[0].read_text() == edge.COMMITTED_TLS[1].read_text()


@pytest.mark.parametrize("variant", ["static", "dns"])
def test_tls_is_the_only_listener_and_every_upstream_is_mutual_tls(variant, issued):
    config = yaml.safe_load(static_tls(issued) if variant == "static" else edge.render_dns(tls=True))
    (listener,) = config["static_resources"]["listeners"]
    assert listener["address"]["socket_address"]["port_value"] == (18443 if variant == "static" else edge.TLS_PORT)
    (chain,) = listener["filter_chains"]
    downstream = chain["transport_socket"]["typed_config"]
    assert downstream["@type"].endswith("DownstreamTlsContext")
    assert downstream["common_tls_context"]["alpn_protocols"] == ["h2", "http/1.1"]
    for cluster in config["static_resources"]["clusters"]:
        upstream = cluster["transport_socket"]["typed_config"]
        assert upstream["sni"] == cluster["name"]
        context = upstream["common_tls_context"]
        assert context["alpn_protocols"] == ["h2"] and context["tls_certificates"]
        validation = context["validation_context"]
        assert validation["match_typed_subject_alt_names"] == [{"san_type": "DNS", "matcher": {"exact": cluster["name"]}}]
        # Health checks use the cluster's transport socket: none of them overrides it.
        assert all("transport_socket_match_criteria" not in h for h in cluster["health_checks"])


def test_without_tls_settings_nothing_changes():
    config = yaml.safe_load(edge.render_dns())
    (listener,) = config["static_resources"]["listeners"]
    assert listener["address"]["socket_address"]["port_value"] == edge.PUBLIC_PORT
    assert "transport_socket" not in listener["filter_chains"][0]
    assert not [c for c in config["static_resources"]["clusters"] if "transport_socket" in c]
