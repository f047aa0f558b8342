"""Secrets: API keys (hashed at rest), private keys (encrypted at rest), staff tokens (JWT)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ADMIN_LEVEL = 50


def new_api_key() -> str:
    return secrets.token_hex(32)


def new_private_key() -> str:
    return secrets.token_hex(32)


def hash_api_key(api_key: str) -> bytes:
    """SHA-256 is enough here: the key is 256 random bits, so there is nothing to brute-force.

    The lookup is by hash equality in the database, which leaks nothing useful about the key."""
    return hashlib.sha256(api_key.encode()).digest()


class PrivateKeyBox:
    """AES-256-GCM with a fresh 96-bit nonce per encryption; stored as nonce || ciphertext+tag."""

    def __init__(self, master_key_b64: str) -> None:
        key = base64.b64decode(master_key_b64)
        if len(key) != 32:
            raise ValueError("LOKET_MASTER_KEY must be base64 of exactly 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, private_key: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, private_key.encode(), b"loket-private-key")

    def open(self, sealed: bytes) -> str:
        return self._aead.decrypt(sealed[:12], sealed[12:], b"loket-private-key").decode()


def hmac_sha1_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


MAX_JTI_LENGTH = 64


@dataclass(frozen=True)
class StaffClaims:
    sub: str
    role_level: int
    location_id: int | None = None
    """The one kiosk location the token acts for; None: no location (only admins may then act on all)."""
    jti: str | None = None
    """The token's id, by which it can be revoked; tokens from elsewhere may carry none."""


def issue_staff_token(
    secret: str, sub: str, role_level: int, ttl_seconds: int = 3600, *, location_id: int | None = None, jti: str | None = None
) -> str:
    """A signed token with a fresh jti (unless one is given), scoped to location_id when given."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": sub, "role_level": role_level, "iat": now, "exp": now + ttl_seconds, "jti": jti or secrets.token_hex(16)}
    if location_id is not None:
        claims["location_id"] = location_id
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_staff_token(secret: str, token: str) -> StaffClaims | None:
    """The one place that trusts a staff token; replace it to plug in a real SSO."""
    try:
        claims, expires_at = _verified_staff_token(secret, token)
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    # Checked at every use, as jwt.decode does (expired when exp <= now), since the signature check is cached.
    return claims if expires_at > time.time() else None


@functools.lru_cache(maxsize=1024)
def _verified_staff_token(secret: str, token: str) -> tuple[StaffClaims, float]:
    """The token's claims and expiry once its signature and claims passed, remembered per token:
    a kiosk sends the same token with every request for as long as it lives, and PyJWT's decode
    of every request would be a tenth of the web's CPU per kiosk create. A token that fails raises, and a failure
    is not remembered, so only tokens this deployment signed are kept (at most 1024)."""
    claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
    location_id, jti = claims.get("location_id"), claims.get("jti")
    # A malformed scope or id makes the token invalid rather than unscoped or unrevocable.
    if location_id is not None and (type(location_id) is not int or not 1 <= location_id < 2**31):
        raise ValueError("location_id must be a positive integer")
    if jti is not None and (not isinstance(jti, str) or not 1 <= len(jti) <= MAX_JTI_LENGTH):
        raise ValueError(f"jti must be a string of 1-{MAX_JTI_LENGTH} characters")
    staff = StaffClaims(sub=str(claims["sub"]), role_level=int(claims.get("role_level", 0)), location_id=location_id, jti=jti)
    return staff, float(claims["exp"])


def unverified_expiry_and_jti(token: str) -> tuple[float | None, str | None]:
    """A token's exp and jti without checking its signature: for an operator who revokes it."""
    claims = jwt.decode(token, options={"verify_signature": False})
    exp, jti = claims.get("exp"), claims.get("jti")
    return (float(exp) if isinstance(exp, int | float) else None), (jti if isinstance(jti, str) else None)


class ResponseCipher:
    """Encrypts public kiosk responses: AES-256-GCM, a fresh 96-bit nonce per response.

    Wire format: base64(nonce(12) || ciphertext || tag(16)) of the UTF-8 JSON, no associated data.
    """

    def __init__(self, key_b64: str) -> None:
        key = base64.b64decode(key_b64)
        if len(key) != 32:
            raise ValueError("RESPONSE_ENCRYPTION_KEY must be base64 of exactly 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes) -> str:
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, plaintext, None)).decode()

    def open(self, sealed: str) -> bytes:
        raw = base64.b64decode(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], None)
