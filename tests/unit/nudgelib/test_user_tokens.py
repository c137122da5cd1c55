"""The rules of user tokens (nudgelib.user_tokens), without servers: which registered keys are
accepted, and which tokens, with which reason."""

from __future__ import annotations

import hashlib
import hmac

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from nudgelib import user_tokens as ut
from tests.signing import SigningKey

NOW = 1_800_000_000.0
APP = "app_123"
RULES = ut.TokenRules(max_lifetime=3600, leeway=30)


@pytest.fixture(scope="module")
def es() -> SigningKey:
    return SigningKey("ES256", kid="es-1")


@pytest.fixture(scope="module")
def rs() -> SigningKey:
    return SigningKey("RS256", kid="rs-1")


def registered(*keys: SigningKey, revoked: tuple[str, ...] = ()) -> dict:
    out = {}
    for k in keys:
        parsed = ut.parse_public_key(k.public_pem, k.kid)
        reg = ut.RegisteredKey(parsed.kid, parsed.algorithm, parsed.public_key_pem, parsed.kid in revoked)
        out[parsed.kid] = (reg, ut.load_key(reg))
    return out


def refusal(token: str, keys: dict, now: float = NOW, rules: ut.TokenRules = RULES) -> str:
    with pytest.raises(ut.TokenRefused) as caught:
        ut.verify(token, keys, APP, now, rules)
    return caught.value.reason


# --- registering keys -----------------------------------------------------------------------

def test_an_ec_key_is_es256_and_named_by_its_thumbprint_in_either_form(es):
    from_pem = ut.parse_public_key(es.public_pem)
    from_jwk = ut.parse_public_key(es.public_jwk())
    assert from_pem.algorithm == from_jwk.algorithm == "ES256"
    assert from_pem.kid == from_jwk.kid and len(from_pem.kid) == 43  # base64url SHA-256
    assert from_pem.public_key_pem == from_jwk.public_key_pem
    assert from_pem.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")


def test_rfc_7638_thumbprint_of_its_example_key():
    # RFC 7638 section 3.1: this RSA key's thumbprint is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.
    n = ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
         "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
         "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
         "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
    parsed = ut.parse_public_key(f'{{"kty": "RSA", "n": "{n}", "e": "AQAB", "alg": "RS256", "kid": ""}}')
    assert parsed.kid == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert parsed.algorithm == "RS256"


def test_a_given_key_id_wins_over_the_jwks_own(es):
    assert ut.parse_public_key(es.public_jwk(kid="from-jwk")).kid == "from-jwk"
    assert ut.parse_public_key(es.public_jwk(kid="from-jwk"), "given").kid == "given"


def test_an_rsa_key_is_rs256_also_as_pkcs1_pem(rs):
    pkcs1 = rs.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.PKCS1).decode()
    assert "BEGIN RSA PUBLIC KEY" in pkcs1
    assert ut.parse_public_key(pkcs1, "k").algorithm == "RS256"


def _pem(public) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.mark.parametrize("make, complaint", [
    (lambda: _pem(ec.generate_private_key(ec.SECP384R1()).public_key()), "P-256"),
    (lambda: _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()), "2048 to 8192 bits"),
    (lambda: SigningKey("ES256").public_jwk(alg="ES384"), "alg 'ES384'"),
    (lambda: SigningKey("ES256").private_pem, "private key"),
    (lambda: SigningKey("ES256").public_jwk(d="c2VjcmV0"), "private key"),
    (lambda: '{"kty": "oct", "k": "c2VjcmV0"}', "EC or RSA"),
    (lambda: "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----", "not a PEM public key"),
    (lambda: "{not json", "not a JWK"),
    (lambda: "  ", "no key"),
])
def test_keys_that_cannot_verify_user_tokens_safely_are_refused(make, complaint):
    with pytest.raises(ut.BadPublicKey, match=complaint):
        ut.parse_public_key(make())


@pytest.mark.parametrize("kid", ["has space", "x" * 129, "ünï"])
def test_a_key_id_is_short_and_plain(es, kid):
    with pytest.raises(ut.BadPublicKey, match="key id"):
        ut.parse_public_key(es.public_pem, kid)


# --- checking tokens ------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["es", "rs"])
def test_a_good_token_names_its_user(which, request):
    key = request.getfixturevalue(which)
    verified = ut.verify(key.token("user-1", now=NOW), registered(key), APP, NOW, RULES)
    assert verified.user_id == "user-1" and verified.kid == key.kid
    assert verified.valid_until == int(NOW + 600) + RULES.leeway


def test_missing_or_garbled_tokens(es):
    keys = registered(es)
    assert refusal("", keys) == ut.MISSING
    assert refusal("not-a-jwt", keys) == ut.MALFORMED
    assert refusal("x" * (ut.MAX_TOKEN_LENGTH + 1), keys) == ut.MALFORMED
    header, payload, signature = es.token("u", now=NOW).split(".")
    assert refusal(f"{header}.{payload}!.{signature}", keys) == ut.MALFORMED


def test_the_key_is_chosen_by_kid_and_must_be_registered_and_active(es, rs):
    keys = registered(es, rs, revoked=("rs-1",))
    assert ut.verify(es.token("u", now=NOW), keys, APP, NOW, RULES).user_id == "u"
    assert refusal(es.token("u", now=NOW, header={"kid": "other"}), keys) == ut.UNKNOWN_KEY
    no_kid = jwt.encode({"sub": "u", "exp": NOW + 60}, es.private, algorithm="ES256")
    assert refusal(no_kid, keys) == ut.UNKNOWN_KEY
    assert refusal(rs.token("u", now=NOW), keys) == ut.KEY_REVOKED
    # Another app's keys are not this app's: the same kid elsewhere means nothing here.
    assert refusal(es.token("u", now=NOW), registered(rs)) == ut.UNKNOWN_KEY


def test_a_signature_by_another_key_under_a_registered_kid_is_refused(es):
    impostor = SigningKey("ES256", kid=es.kid)
    assert refusal(impostor.token("u", now=NOW), registered(es)) == ut.BAD_SIGNATURE
    header, payload, _ = es.token("u", now=NOW).split(".")
    _, _, other_signature = es.token("v", now=NOW).split(".")
    assert refusal(f"{header}.{payload}.{other_signature}", registered(es)) == ut.BAD_SIGNATURE


def test_the_algorithm_is_the_keys_not_the_tokens(es, rs):
    keys = registered(es, rs)
    # An RS256 signature presented for the ES256 key, `none`, and HS256 keyed with the public
    # PEM (the classic confusion attack) are all refused before any signature check.
    assert refusal(rs.token("u", now=NOW, header={"kid": es.kid}), keys) == ut.ALGORITHM_MISMATCH
    unsigned = jwt.encode({"sub": "u", "exp": NOW + 60}, None, algorithm="none", headers={"kid": es.kid})
    assert refusal(unsigned, keys) == ut.ALGORITHM_MISMATCH
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","kid":"es-1","typ":"JWT"}').decode()
    payload = jwt.utils.base64url_encode(b'{"sub":"u","exp":1800000060}').decode()
    mac = hmac.new(es.public_pem.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert refusal(f"{header}.{payload}.{jwt.utils.base64url_encode(mac).decode()}", keys) == ut.ALGORITHM_MISMATCH


def test_expiry_is_required_and_honoured_with_the_leeway(es):
    keys = registered(es)
    assert refusal(es.token("u", now=NOW, exp=None), keys) == ut.INVALID_CLAIMS
    assert refusal(es.token("u", now=NOW, exp="tomorrow"), keys) == ut.INVALID_CLAIMS
    assert refusal(es.token("u", now=NOW, exp=True), keys) == ut.INVALID_CLAIMS
    token = es.token("u", now=NOW, lifetime=60)
    assert ut.verify(token, keys, APP, NOW + 60 + 29, RULES).user_id == "u"  # within the leeway
    assert refusal(token, keys, now=NOW + 60 + 30) == ut.EXPIRED


def test_not_before_and_issued_at_may_not_be_in_the_future(es):
    keys = registered(es)
    assert ut.verify(es.token("u", now=NOW, nbf=NOW + 29), keys, APP, NOW, RULES).user_id == "u"
    assert refusal(es.token("u", now=NOW, nbf=NOW + 31), keys) == ut.NOT_YET_VALID
    assert refusal(es.token("u", now=NOW + 31), keys, now=NOW) == ut.NOT_YET_VALID
    assert ut.verify(es.token("u", now=NOW + 29), keys, APP, NOW, RULES).user_id == "u"


def test_a_token_lives_at_most_the_maximum_lifetime(es):
    keys = registered(es)
    assert ut.verify(es.token("u", now=NOW, lifetime=3600), keys, APP, NOW, RULES).user_id == "u"
    assert refusal(es.token("u", now=NOW, lifetime=3601), keys) == ut.LIFETIME_TOO_LONG
    # Without iat, the lifetime left counts from now.
    assert refusal(es.token("u", now=NOW, lifetime=3601, iat=None), keys) == ut.LIFETIME_TOO_LONG
    assert ut.verify(es.token("u", now=NOW, lifetime=3601, iat=None), keys, APP, NOW + 2, RULES).user_id == "u"
    # An old iat with a far exp is still too long, though little of it is left.
    assert refusal(es.token("u", now=NOW - 3000, lifetime=3700), keys) == ut.LIFETIME_TOO_LONG


def test_the_subject_is_a_user_id(es):
    keys = registered(es)
    for sub in (None, "", 42, ["u"]):
        assert refusal(es.token("u", now=NOW, sub=sub), keys) == ut.INVALID_CLAIMS, sub
    assert refusal(es.token("x" * 257, now=NOW), keys) == ut.INVALID_CLAIMS
    assert ut.verify(es.token("x" * 256, now=NOW), keys, APP, NOW, RULES).user_id == "x" * 256


def test_an_audience_when_present_names_the_app(es):
    keys = registered(es)
    assert ut.verify(es.token("u", now=NOW, aud=APP), keys, APP, NOW, RULES).user_id == "u"
    assert ut.verify(es.token("u", now=NOW, aud=["other", APP]), keys, APP, NOW, RULES).user_id == "u"
    assert refusal(es.token("u", now=NOW, aud="app_other"), keys) == ut.WRONG_AUDIENCE
    assert refusal(es.token("u", now=NOW, aud=7), keys) == ut.WRONG_AUDIENCE
