"""A local certificate authority and the certificates Nudge's processes need, for `nudge run
--tls` and the tests (production brings its own: cert-manager, a company CA…).

`issue(folder)` writes, once, into `folder`:
  ca.crt, ca.key              the CA (ca.key signs; no process reads it)
  <service>.crt/.key          each service's identity: a server and client certificate whose
                              DNS name is the service's (`decision`), as its peers check
  edge.crt/.key               the edge's identity towards the services (a client certificate)
  operator.crt/.key           the tools' (`nudge` commands, health checks) towards the services
  public.crt/.key             the edge's public listener (localhost, 127.0.0.1)
Every certificate also names localhost and 127.0.0.1, so a client on this machine that
dials an address (not the service's name) still finds it in the certificate.
A folder that has them keeps them: a restarted `nudge run` keeps its CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nudgelib.config import SERVICES

# Who gets a certificate, besides the services.
EDGE, OPERATOR, PUBLIC = "edge", "operator", "public"
LIFETIME = dt.timedelta(days=365)


@dataclass(frozen=True)
class LocalCerts:
    """The files of one folder's certificates."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.crt"

    def cert(self, name: str) -> Path:
        return self.folder / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.folder / f"{name}.key"

    def env(self, name: str) -> dict[str, str]:
        """The settings (nudgelib.config.TlsSettings) that give `name` its identity."""
        return {"NUDGE_TLS_CERT_FILE": str(self.cert(name)), "NUDGE_TLS_KEY_FILE": str(self.key(name)),
                "NUDGE_TLS_CA_FILE": str(self.ca)}


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def new_ca(common_name: str = "Nudge local CA") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def new_leaf(name: str, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
             ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate for `name`, good as a server's and as a client's."""
    key = _key()
    now = dt.datetime.now(dt.timezone.utc)
    names = [x509.DNSName(name), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + LIFETIME)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def issue(folder: Path, names: tuple[str, ...] = (*SERVICES, EDGE, OPERATOR, PUBLIC)) -> LocalCerts:
    """The CA and a certificate for each of `names` in `folder`; those already there are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    certs = LocalCerts(folder)
    ca_key_path = folder / "ca.key"
    if certs.ca.exists() and ca_key_path.exists():
        ca = x509.load_pem_x509_certificate(certs.ca.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    else:
        ca, ca_key = new_ca()
        _write(ca_key_path, _pem_key(ca_key), private=True)
        _write(certs.ca, ca.public_bytes(serialization.Encoding.PEM))
        for name in names:  # issued by the old CA: no longer trusted
            certs.cert(name).unlink(missing_ok=True)
    for name in names:
        if certs.cert(name).exists() and certs.key(name).exists():
            continue
        cert, key = new_leaf(name, ca, ca_key)
        _write(certs.key(name), _pem_key(key), private=True)
        _write(certs.cert(name), cert.public_bytes(serialization.Encoding.PEM))
    return certs


def main(argv: list[str] | None = None) -> int:
    """`python -m nudgetools.certs FOLDER`: a local CA and every certificate, for trying TLS
    with docker-compose.tls.yml (production brings certificates from its own CA)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m nudgetools.certs", description=main.__doc__)
    p.add_argument("folder", type=Path)
    args = p.parse_args(argv)
    issued = issue(args.folder)
    print(f"CA {issued.ca}; certificates and keys for {', '.join((*SERVICES, EDGE, OPERATOR, PUBLIC))} in "
          f"{args.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
