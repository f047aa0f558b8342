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


@dataclass(frozen=True)
class StaffClaims:
    sub: str
    role_level: int


def issue_staff_token(secret: str, sub: str, role_level: int, ttl_seconds: int = 3600) -> str:
    now = int(time.time())
    claims = {"sub": sub, "role_level": role_level, "iat": now, "exp": now + ttl_seconds}
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
    was 14% of the web's CPU per kiosk create (py-spy). A token that fails raises, and a failure
    is not remembered, so only tokens this deployment signed are kept (at most 1024)."""
    claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
    return StaffClaims(sub=str(claims["sub"]), role_level=int(claims.get("role_level", 0))), float(claims["exp"])


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
