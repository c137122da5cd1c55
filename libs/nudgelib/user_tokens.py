"""Signed user tokens: the rules, without I/O.

A public key (scope `public`, one that may ship inside an app or a page) is valid only with a
user token: a JWT that the app's own backend signs, whose `sub` is the user id. The app
registers the public half of each signing key pair (ES256 on P-256, or RS256 with at least
2048 bits), as PEM (SubjectPublicKeyInfo) or as a JWK, under a key id; the token's header
names that id in `kid`.

A token is accepted when, at `now`:
- its header names a registered, unrevoked key (`kid`) and that key's algorithm (`alg`);
- its signature verifies with that key;
- `sub` is a non-empty string of at most 256 characters (a user id);
- `exp` is present and not passed (with `leeway` seconds of tolerance for clock skew);
- `nbf` and `iat`, when present, are not in the future (the same leeway);
- it lives at most `max_lifetime` seconds: `exp` minus `iat` (or minus now, without `iat`);
- `aud`, when present, names the app id (a token made for another audience is refused).

Anything else is refused with a reason code (`REASONS`), which the caller sees in the
status's google.rpc.ErrorInfo.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ALGORITHMS = ("ES256", "RS256")
MIN_RSA_BITS = 2048
# Larger keys verify slowly for no gain: a cap keeps every token check cheap.
MAX_RSA_BITS = 8192
MAX_USER_ID_LENGTH = 256
# Longer is not a token an app's backend made (and would bloat the cache of verified tokens).
MAX_TOKEN_LENGTH = 8192
KID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Active keys one app may hold: enough to rotate (old and new) with room to spare.
MAX_ACTIVE_KEYS = 10

# Reasons a token is refused (UNAUTHENTICATED), in ErrorInfo.reason.
MISSING = "USER_TOKEN_MISSING"
MALFORMED = "USER_TOKEN_MALFORMED"
UNKNOWN_KEY = "USER_TOKEN_UNKNOWN_KEY"
KEY_REVOKED = "USER_TOKEN_KEY_REVOKED"
ALGORITHM_MISMATCH = "USER_TOKEN_ALGORITHM_MISMATCH"
BAD_SIGNATURE = "USER_TOKEN_BAD_SIGNATURE"
INVALID_CLAIMS = "USER_TOKEN_INVALID_CLAIMS"
EXPIRED = "USER_TOKEN_EXPIRED"
NOT_YET_VALID = "USER_TOKEN_NOT_YET_VALID"
LIFETIME_TOO_LONG = "USER_TOKEN_LIFETIME_TOO_LONG"
WRONG_AUDIENCE = "USER_TOKEN_WRONG_AUDIENCE"
REASONS = (MISSING, MALFORMED, UNKNOWN_KEY, KEY_REVOKED, ALGORITHM_MISMATCH, BAD_SIGNATURE, INVALID_CLAIMS,
           EXPIRED, NOT_YET_VALID, LIFETIME_TOO_LONG, WRONG_AUDIENCE)


class TokenRefused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class BadPublicKey(ValueError):
    """What an operator registered is not a usable public key; the message says why."""


@dataclass(frozen=True)
class TokenRules:
    # The longest a token may live, in seconds (exp - iat).
    max_lifetime: float = 24 * 3600.0
    # Tolerance for clock skew between the app's backend and Nudge, in seconds.
    leeway: float = 30.0


@dataclass(frozen=True)
class RegisteredKey:
    """One key an app registered, as stored: its id, algorithm and PEM public key."""

    kid: str
    algorithm: str
    public_key_pem: str
    revoked: bool = False


@dataclass(frozen=True)
class ParsedKey:
    """A public key read from what an operator gave, normalized for storage."""

    kid: str
    algorithm: str
    public_key_pem: str


def parse_public_key(text: str, kid: str = "") -> ParsedKey:
    """A public key from PEM (SubjectPublicKeyInfo or PKCS#1 RSA) or a JWK (JSON object).

    The algorithm follows from the key: P-256 is ES256, RSA is RS256; other curves and RSA
    keys under 2048 bits are refused, and so are private keys (only the public half is ever
    sent to Nudge). The key id is `kid` if given, else the JWK's own `kid`, else the key's
    RFC 7638 thumbprint, so that registering the same key twice names it the same way."""
    text = text.strip()
    if not text:
        raise BadPublicKey("no key given")
    jwk_kid = jwk_alg = ""
    if text.startswith("{"):
        key, jwk_kid, jwk_alg = _from_jwk(text)
    else:
        key = _from_pem(text)
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise BadPublicKey(f"EC keys must be on P-256 (ES256), not {key.curve.name}")
        algorithm = "ES256"
    elif isinstance(key, rsa.RSAPublicKey):
        if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
            raise BadPublicKey(f"RSA keys need {MIN_RSA_BITS} to {MAX_RSA_BITS} bits, this one has {key.key_size}")
        algorithm = "RS256"
    else:
        raise BadPublicKey("only EC P-256 (ES256) and RSA (RS256) keys are accepted")
    if jwk_alg and jwk_alg != algorithm:
        raise BadPublicKey(f"the JWK says alg {jwk_alg!r}, but this key signs {algorithm}")
    kid = kid or jwk_kid or thumbprint(key)
    if not KID_PATTERN.fullmatch(kid):
        raise BadPublicKey("a key id is 1 to 128 letters, digits or . _ : -")
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return ParsedKey(kid=kid, algorithm=algorithm, public_key_pem=pem)


def _from_pem(text: str):
    if "PRIVATE KEY" in text:
        raise BadPublicKey("this is a private key: register only its public half (keep the private key secret)")
    try:
        return serialization.load_pem_public_key(text.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise BadPublicKey("not a PEM public key (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`) "
                           "of a type cryptography reads") from None


def _from_jwk(text: str):
    try:
        jwk = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadPublicKey(f"not a JWK: {exc.msg}") from None
    if not isinstance(jwk, dict):
        raise BadPublicKey("a JWK is a JSON object")
    if "d" in jwk:
        raise BadPublicKey("this JWK holds a private key: register only its public half")
    kid, alg = jwk.get("kid", ""), jwk.get("alg", "")
    if not isinstance(kid, str) or not isinstance(alg, str):
        raise BadPublicKey("the JWK's kid and alg must be strings")
    kty = jwk.get("kty")
    try:
        if kty == "EC":
            return ECAlgorithm.from_jwk(jwk), kid, alg
        if kty == "RSA":
            return RSAAlgorithm.from_jwk(jwk), kid, alg
    except (jwt.InvalidKeyError, ValueError, KeyError, TypeError, AttributeError, UnsupportedAlgorithm) as exc:
        raise BadPublicKey(f"not a valid {kty} JWK ({exc})") from None
    raise BadPublicKey("a JWK's kty must be EC or RSA")


def thumbprint(key) -> str:
    """The key's RFC 7638 JWK thumbprint (SHA-256, base64url without padding)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(key, as_dict=True)
        members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    else:
        jwk = RSAAlgorithm.to_jwk(key, as_dict=True)
        members = {k: jwk[k] for k in ("e", "kty", "n")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def load_key(registered: RegisteredKey):
    """The key object to verify with (parsing a PEM costs more than verifying: callers keep it)."""
    return serialization.load_pem_public_key(registered.public_key_pem.encode())


@dataclass(frozen=True)
class Verified:
    user_id: str
    kid: str
    # When the token stops being accepted (exp plus the leeway), in seconds since the epoch.
    valid_until: float


def verify(token: str, keys: Mapping[str, tuple[RegisteredKey, Any]], app_id: str, now: float,
           rules: TokenRules) -> Verified:
    """The token's user, if `token` is acceptable at `now` (seconds since the epoch) for the app
    whose keys (`kid` -> (registered key, loaded key object)) are given; else TokenRefused."""
    if not token:
        raise TokenRefused(MISSING, "this API key is a public key: send a user token in `x-nudge-user-token`")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRefused(MALFORMED, f"the user token is longer than {MAX_TOKEN_LENGTH} characters")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise TokenRefused(MALFORMED, "the user token is not a JWT (header.payload.signature)") from None
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRefused(UNKNOWN_KEY, "the user token's header names no key (`kid`)")
    found = keys.get(kid)
    if found is None:
        raise TokenRefused(UNKNOWN_KEY, f"the app has no user token key {kid!r}")
    registered, key = found
    if registered.revoked:
        raise TokenRefused(KEY_REVOKED, f"user token key {kid!r} was revoked")
    if header.get("alg") != registered.algorithm:
        raise TokenRefused(ALGORITHM_MISMATCH,
                           f"key {kid!r} signs with {registered.algorithm}, the token says {header.get('alg')!r}")
    try:
        # PyJWT checks the signature; the claims are checked below against `now`, so that
        # the rules take their clock as an argument.
        claims = jwt.decode(token, key=key, algorithms=[registered.algorithm], options=_SIGNATURE_ONLY)
    except jwt.InvalidSignatureError:
        raise TokenRefused(BAD_SIGNATURE, f"the user token's signature does not verify with key {kid!r}") from None
    except jwt.InvalidTokenError as exc:
        raise TokenRefused(MALFORMED, f"the user token cannot be read: {exc}") from None
    user_id, valid_until = check_claims(claims, app_id, now, rules)
    return Verified(user_id=user_id, kid=kid, valid_until=valid_until)


_SIGNATURE_ONLY = {
    "verify_signature": True, "verify_exp": False, "verify_nbf": False, "verify_iat": False,
    "verify_aud": False, "verify_iss": False, "verify_sub": False, "verify_jti": False, "require": [],
}


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenRefused(INVALID_CLAIMS, f"the user token's {name!r} must be a number of seconds since the epoch")
    return float(value)


def check_claims(claims: Mapping[str, Any], app_id: str, now: float, rules: TokenRules) -> tuple[str, float]:
    """The user id, and until when the token is accepted, from verified claims; else TokenRefused."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise TokenRefused(INVALID_CLAIMS, "the user token's `sub` (the user id) must be a non-empty string")
    if len(sub) > MAX_USER_ID_LENGTH:
        raise TokenRefused(INVALID_CLAIMS, f"the user token's `sub` is longer than {MAX_USER_ID_LENGTH} characters")
    exp = _number(claims, "exp")
    if exp is None:
        raise TokenRefused(INVALID_CLAIMS, "the user token has no `exp`: user tokens must expire")
    nbf = _number(claims, "nbf")
    iat = _number(claims, "iat")
    if exp + rules.leeway <= now:
        raise TokenRefused(EXPIRED, "the user token has expired")
    if nbf is not None and nbf - rules.leeway > now:
        raise TokenRefused(NOT_YET_VALID, "the user token is not valid yet (`nbf`)")
    if iat is not None and iat - rules.leeway > now:
        raise TokenRefused(NOT_YET_VALID, "the user token was issued in the future (`iat`)")
    lifetime = exp - (iat if iat is not None else now)
    if lifetime > rules.max_lifetime:
        raise TokenRefused(LIFETIME_TOO_LONG,
                           f"the user token lives {lifetime:.0f}s, more than the {rules.max_lifetime:.0f}s allowed")
    if "aud" in claims:
        aud = claims["aud"]
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or app_id not in audiences:
            raise TokenRefused(WRONG_AUDIENCE, f"the user token's `aud` does not name this app ({app_id})")
    return sub, exp + rules.leeway
