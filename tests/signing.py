"""Key pairs that tests make, and the user tokens an app's backend would sign with them."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


@dataclass
class SigningKey:
    """A key pair of the app's backend: the private half signs, the public half is registered."""

    algorithm: str  # ES256 or RS256
    kid: str = ""
    private: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.private is None:
            self.private = (ec.generate_private_key(ec.SECP256R1()) if self.algorithm == "ES256"
                            else rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def public_pem(self) -> str:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    @property
    def private_pem(self) -> str:
        return self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()

    def public_jwk(self, **members: str) -> str:
        to_jwk = ECAlgorithm.to_jwk if self.algorithm == "ES256" else RSAAlgorithm.to_jwk
        jwk = to_jwk(self.private.public_key(), as_dict=True)
        jwk.update(members)
        return json.dumps(jwk)

    def token(self, user: str, lifetime: float = 600, now: float | None = None, header: dict | None = None,
              algorithm: str | None = None, **claims: Any) -> str:
        """A token for `user` (its `sub`) issued at `now` (default: the wall clock) living `lifetime` seconds;
        `claims` override or add claims (None removes one)."""
        now = time.time() if now is None else now
        payload = {"sub": user, "iat": int(now), "exp": int(now + lifetime), **claims}
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, self.private, algorithm=algorithm or self.algorithm,
                          headers={"kid": self.kid, **(header or {})})
