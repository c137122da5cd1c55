"""Mutual TLS between Nudge's processes, as configuration (TlsSettings in nudgelib.config).

With NUDGE_TLS_CERT_FILE, NUDGE_TLS_KEY_FILE and NUDGE_TLS_CA_FILE set, a service listens
with TLS only and asks every client for a certificate signed by that CA (a client without
one fails the handshake, before any RPC, internal token or not); its calls to its peers
present its own certificate and accept only a peer whose certificate the CA signed and that
names the peer (a DNS subject alternative name equal to the service's name: `decision`).
Unset, everything is plaintext, as on loopback with `make run`.

The files are read and checked once, at start: a missing or unreadable file, a certificate
or key that is not PEM, or a key that does not belong to the certificate stops the process
with one line naming the setting. Certificates are not re-read while a process runs: a
renewed one takes effect as each process restarts (a rolling restart).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from nudgelib.config import ConfigError, TlsSettings
from nudgelib.config import read as read_settings

_NAMES = ("NUDGE_TLS_CERT_FILE", "NUDGE_TLS_KEY_FILE", "NUDGE_TLS_CA_FILE")


@dataclass(frozen=True)
class TlsFiles:
    """A process's identity (certificate chain and key, PEM) and the CA it trusts."""

    cert: bytes
    key: bytes
    ca: bytes

    def server_credentials(self) -> grpc.ServerCredentials:
        """TLS only, and a client certificate signed by the CA required of every caller."""
        return grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.ca,
                                           require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """The peer verified against the CA; this process's certificate presented to it."""
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key,
                                            certificate_chain=self.cert)


def peer_options(service: str) -> list[tuple[str, str]]:
    """Channel options for calling `service` with TLS: its certificate must name the service,
    whatever the target (a list of replicas' IP addresses names no host to check)."""
    return [("grpc.ssl_target_name_override", service)]


def load(settings: TlsSettings) -> TlsFiles | None:
    """The files the settings name, checked; None when TLS is off (none of them set). Some
    set and not others is an error: half a configuration would silently stay plaintext."""
    paths = (settings.cert_file, settings.key_file, settings.ca_file)
    if not any(paths):
        return None
    if not all(paths):
        given = [n for n, p in zip(_NAMES, paths) if p]
        missing = [n for n, p in zip(_NAMES, paths) if not p]
        raise ConfigError(f"{', '.join(missing)} must be set too: mutual TLS needs a certificate, its key and the CA "
                          f"(got only {', '.join(given)})")
    cert, key = load_pair(_NAMES[0], settings.cert_file, _NAMES[1], settings.key_file)
    return TlsFiles(cert, key, load_ca(_NAMES[2], settings.ca_file))


def load_pair(cert_name: str, cert_path: str, key_name: str, key_path: str) -> tuple[bytes, bytes]:
    """A PEM certificate chain and the private key of its first certificate, as bytes."""
    cert_pem = read_pem(cert_name, cert_path)
    certs = _certificates(cert_name, cert_path, cert_pem)
    key_pem = read_pem(key_name, key_path)
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        reason = "is encrypted (give an unencrypted key)" if isinstance(exc, TypeError) else "is not a PEM private key"
        raise ConfigError(f"{key_name}: {key_path} {reason}") from None
    if key.public_key() != certs[0].public_key():
        raise ConfigError(f"{key_name}: {key_path} is not the key of the certificate in {cert_name} ({cert_path})")
    return cert_pem, key_pem


def load_ca(name: str, path: str) -> bytes:
    pem = read_pem(name, path)
    _certificates(name, path, pem)
    return pem


def read_pem(name: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from None
    if not data.strip():
        raise ConfigError(f"{name}: {path} is empty")
    return data


def _certificates(name: str, path: str, pem: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise ConfigError(f"{name}: {path} holds no PEM certificate") from None


def client_credentials(env: Mapping[str, str]) -> grpc.ChannelCredentials | None:
    """For the tools that call the services or the edge (the CLI, health checks): TLS when
    NUDGE_TLS_CA_FILE is set, verifying the server against that CA, with the certificate of
    NUDGE_TLS_CERT_FILE and NUDGE_TLS_KEY_FILE presented when they are set too (a service with
    mutual TLS requires one; the edge does not). None: plaintext."""
    s = read_settings(TlsSettings, env)
    if not s.ca_file:
        if s.cert_file or s.key_file:
            raise ConfigError("NUDGE_TLS_CA_FILE must be set too: it says which servers to trust")
        return None
    ca = load_ca(_NAMES[2], s.ca_file)
    if not (s.cert_file or s.key_file):
        return grpc.ssl_channel_credentials(root_certificates=ca)
    if not (s.cert_file and s.key_file):
        missing = _NAMES[1] if s.cert_file else _NAMES[0]
        raise ConfigError(f"{missing} must be set too: a client certificate needs its key")
    cert, key = load_pair(_NAMES[0], s.cert_file, _NAMES[1], s.key_file)
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
