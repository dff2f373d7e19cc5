import time

import pytest

from neiromatrius_devstack import jwt

SECRET = "a-local-secret-with-at-least-32-characters"


def test_api_keys_carry_role_and_exp() -> None:
    claims = jwt.verify(jwt.api_key("anon", SECRET), SECRET)
    assert claims["role"] == "anon"
    assert claims["exp"] > time.time() + 365 * 24 * 3600


def test_expired_token_is_reported_as_expired() -> None:
    token = jwt.sign({"role": "authenticated", "exp": int(time.time()) - 120}, SECRET)
    with pytest.raises(jwt.TokenError) as info:
        jwt.verify(token, SECRET)
    assert info.value.expired
    assert info.value.message == "JWT expired"


def test_wrong_secret_is_an_invalid_signature() -> None:
    with pytest.raises(jwt.TokenError) as info:
        jwt.verify(jwt.api_key("anon", "another-secret-of-at-least-32-characters!"), SECRET)
    assert not info.value.expired
    assert "JWSInvalidSignature" in info.value.message


def test_user_token_is_goTrue_shaped() -> None:
    claims = jwt.verify(jwt.user_token(SECRET, sub="11111111-1111-1111-1111-111111111111"), SECRET)
    assert claims["role"] == "authenticated"
    assert claims["aud"] == "authenticated"
    assert claims["sub"] == "11111111-1111-1111-1111-111111111111"
