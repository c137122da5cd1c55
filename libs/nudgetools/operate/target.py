"""Where the services are and which key to use, from the command line or the environment.

    --target / NUDGE_TARGET   unset: `make run`'s ports on 127.0.0.1 (50051-50054);
                              HOST:PORT: one address for all four (an edge such as Envoy,
                              routing by gRPC service name);
                              ingestion=HOST:PORT,segmentation=…,decision=…,delivery=…:
                              each service's own address (the ones a command needs).
    NUDGE_ADMIN_KEY           the app's admin key (the app is always the key's app).
    NUDGE_TLS_CA_FILE         TLS, trusting this CA (an edge with TLS: `nudge run --tls`'s tls/ca.crt);
    NUDGE_TLS_CERT_FILE,      with a client certificate too (the services themselves, when
    NUDGE_TLS_KEY_FILE        they require mutual TLS); nudgelib.tls.client_credentials.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from nudge_client import AsyncNudge, local_targets
from nudge_client.rpcs import SERVICES
from nudgelib.config import ConfigError
from nudgelib.tls import client_credentials


class TargetError(ValueError):
    """A --target or key that cannot be used; the message is the one line to print."""


def parse_target(text: str) -> str | dict[str, str]:
    text = text.strip()
    if not text:
        return local_targets()
    if "=" not in text:
        return text
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, address = part.partition("=")
        name, address = name.strip(), address.strip()
        if not sep or name not in SERVICES or not address:
            raise TargetError(f"--target: {part!r} is not SERVICE=HOST:PORT with SERVICE one of {', '.join(SERVICES)}")
        if name in out:
            raise TargetError(f"--target: {name} is given twice")
        out[name] = address
    return out


def describe(target: str | Mapping[str, str]) -> str:
    if isinstance(target, str):
        return target
    return ",".join(f"{k}={v}" for k, v in target.items())


def client(target_option: str | None, timeout: float) -> AsyncNudge:
    """An admin client for the target (the option, else NUDGE_TARGET, else the local ports)."""
    target = parse_target(target_option if target_option is not None else os.environ.get("NUDGE_TARGET", ""))
    key = os.environ.get("NUDGE_ADMIN_KEY", "").strip()
    if not key:
        raise TargetError("NUDGE_ADMIN_KEY is not set: export the app's admin key "
                          "(`make run` prints the demo app's; `nudge apps create` makes an app's)")
    try:
        credentials = client_credentials(os.environ)
    except ConfigError as exc:
        raise TargetError(str(exc)) from None
    return AsyncNudge(target, key, timeout=timeout, credentials=credentials)
