"""core.security's staff tokens: a token's signature check is remembered, its expiry is not; its
location and jti come back as signed, and a malformed one makes the token invalid."""

from __future__ import annotations

import time

import jwt

from core.security import StaffClaims, issue_staff_token, verify_staff_token

SECRET = "staff-token-test-secret-of-some-length"


def test_a_remembered_token_still_expires_on_time():
    token = issue_staff_token(SECRET, "kiosk-1", 1, ttl_seconds=2, jti="kiosk-1-token")
    assert verify_staff_token(SECRET, token) == StaffClaims("kiosk-1", 1, jti="kiosk-1-token")
    assert verify_staff_token(SECRET, token) == StaffClaims("kiosk-1", 1, jti="kiosk-1-token")  # the remembered check
    time.sleep(max(0.0, int(time.time()) + 2.05 - time.time()))  # past its exp (whole seconds)
    assert verify_staff_token(SECRET, token) is None


def test_a_token_is_trusted_only_under_the_secret_that_signed_it_and_only_as_signed():
    token = issue_staff_token(SECRET, "ops", 50, jti="ops-token")
    assert verify_staff_token(SECRET, token) == StaffClaims("ops", 50, jti="ops-token")
    assert verify_staff_token("another-secret-of-the-same-sort-xx", token) is None
    header, payload, signature = token.split(".")
    forged = issue_staff_token("attacker-secret-of-the-same-sort-x", "ops", 100).split(".")[1]
    assert verify_staff_token(SECRET, f"{header}.{forged}.{signature}") is None
    for garbage in ("", "nope", "a.b.c", token + "x"):
        assert verify_staff_token(SECRET, garbage) is None


def test_every_token_gets_its_own_jti_and_keeps_its_location():
    first, second = (
        verify_staff_token(SECRET, issue_staff_token(SECRET, "kiosk-7", 1, 720 * 3600, location_id=7)) for _ in range(2)
    )
    assert first is not None and second is not None
    assert first.location_id == second.location_id == 7
    assert first.jti and second.jti and first.jti != second.jti
    assert verify_staff_token(SECRET, issue_staff_token(SECRET, "ops", 50)).location_id is None


def test_a_malformed_location_or_jti_makes_the_token_invalid_not_unscoped():
    now = int(time.time())
    for extra in (
        {"location_id": "7"},
        {"location_id": 0},
        {"location_id": True},
        {"location_id": 2**40},
        {"jti": 5},
        {"jti": "x" * 65},
        {"jti": ""},
    ):
        token = jwt.encode({"sub": "kiosk", "role_level": 1, "exp": now + 60, **extra}, SECRET, algorithm="HS256")
        assert verify_staff_token(SECRET, token) is None, extra
