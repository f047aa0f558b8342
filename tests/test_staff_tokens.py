"""core.security's staff tokens: a token's signature check is remembered, its expiry is not."""

from __future__ import annotations

import time

from core.security import StaffClaims, issue_staff_token, verify_staff_token

SECRET = "staff-token-test-secret-of-some-length"


def test_a_remembered_token_still_expires_on_time():
    token = issue_staff_token(SECRET, "kiosk-1", 1, ttl_seconds=2)
    assert verify_staff_token(SECRET, token) == StaffClaims("kiosk-1", 1)
    assert verify_staff_token(SECRET, token) == StaffClaims("kiosk-1", 1)  # the remembered check
    time.sleep(max(0.0, int(time.time()) + 2.05 - time.time()))  # past its exp (whole seconds)
    assert verify_staff_token(SECRET, token) is None


def test_a_token_is_trusted_only_under_the_secret_that_signed_it_and_only_as_signed():
    token = issue_staff_token(SECRET, "ops", 50)
    assert verify_staff_token(SECRET, token) == StaffClaims("ops", 50)
    assert verify_staff_token("another-secret-of-the-same-sort-xx", token) is None
    header, payload, signature = token.split(".")
    forged = issue_staff_token("attacker-secret-of-the-same-sort-x", "ops", 100).split(".")[1]
    assert verify_staff_token(SECRET, f"{header}.{forged}.{signature}") is None
    for garbage in ("", "nope", "a.b.c", token + "x"):
        assert verify_staff_token(SECRET, garbage) is None
