"""Abuse limits beside the per-key one: per client address and per reseller (web.rate_limit counters).

- Requests with an API key this process has not seen work count against their client address
  (ADDRESS_KEY_ATTEMPTS_PER_MINUTE) before the key is looked up: spraying random keys meets a 429
  after a few dozen lookups, while a reseller's known key costs one set lookup here.
- POST /register per address (REGISTRATIONS_PER_MINUTE; an admin token's registrations are not
  counted), POST /deposit per reseller (DEPOSITS_PER_MINUTE), the public kiosk reads per address
  (PUBLIC_LOOKUPS_PER_MINUTE).

The client address is the socket's peer. X-Forwarded-For is believed only when the peer is one of
TRUSTED_PROXIES, and then only as far as the trusted proxies go: the client is the right-most
address in it that is not itself a trusted proxy (what the left of it says, the client wrote).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from redis.asyncio import Redis
from starlette.requests import Request

from core.security import ADMIN_LEVEL
from core.settings import Network, Settings
from web.rate_limit import RateLimiter

UNKNOWN_ADDRESS = "unknown"


class KnownKeys:
    """Hashes of API keys that found their reseller here, at most `limit` (the oldest go first)."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._hashes: dict[bytes, None] = {}

    def __contains__(self, key_hash: bytes) -> bool:
        return key_hash in self._hashes

    def add(self, key_hash: bytes) -> None:
        hashes = self._hashes
        if key_hash in hashes:
            return
        hashes[key_hash] = None
        if len(hashes) > self._limit:
            del hashes[next(iter(hashes))]

    def discard(self, key_hash: bytes) -> None:
        self._hashes.pop(key_hash, None)


@dataclass
class AbuseLimits:
    key_attempts: RateLimiter
    registrations: RateLimiter
    deposits: RateLimiter
    public_lookups: RateLimiter
    known_keys: KnownKeys
    trusted_proxies: tuple[Network, ...]

    @classmethod
    def of(cls, redis: Redis, settings: Settings) -> AbuseLimits:
        def limiter(name: str, per_minute: int, counted: str) -> RateLimiter:
            prefix = f"{settings.redis_namespace}:loket:rl:{name}"
            return RateLimiter(redis, per_minute, prefix=prefix, max_keys=settings.rate_limit_max_keys, counted=counted)

        return cls(
            key_attempts=limiter(
                "addr-keys", settings.address_key_attempts_per_minute, "requests with unknown API keys from this address"
            ),
            registrations=limiter("addr-register", settings.registrations_per_minute, "registrations from this address"),
            deposits=limiter("deposits", settings.deposits_per_minute, "deposits of this reseller"),
            public_lookups=limiter("addr-public", settings.public_lookups_per_minute, "public lookups from this address"),
            known_keys=KnownKeys(settings.rate_limit_max_keys),
            trusted_proxies=settings.trusted_proxies,
        )

    async def aclose(self) -> None:
        for limiter in (self.key_attempts, self.registrations, self.deposits, self.public_lookups):
            await limiter.aclose()


def _limits(request: Request) -> AbuseLimits:
    return request.app.state.abuse_limits


def client_address(request: Request) -> str:
    client = request.scope.get("client")
    peer = client[0] if client else UNKNOWN_ADDRESS
    trusted = _limits(request).trusted_proxies
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    for hop in reversed(request.headers.get("x-forwarded-for", "").split(",")):
        hop = hop.strip()
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a hop the proxies did not write: nothing left of it can be believed
        if not any(address in network for network in trusted):
            return str(address)
    return peer


def _is_trusted(peer: str, trusted: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in trusted)


def key_attempt_limited(request: Request, key_hash: bytes) -> None:
    """429 for a key not known to work when its address has used its allowance of unknown keys.

    Only keys that turned out unknown are counted (key_failed): many resellers behind one
    address (an aggregator, a NAT) each make a first request with a key not known yet, and a
    valid key must not be refused for being new. Requests in flight at once may overshoot the
    allowance by their number; the key space makes that worthless to a key sprayer."""
    limits = _limits(request)
    if key_hash not in limits.known_keys:
        limits.key_attempts.refuse_when_used_up(client_address(request))


def key_worked(request: Request, key_hash: bytes) -> None:
    _limits(request).known_keys.add(key_hash)


def key_failed(request: Request, key_hash: bytes) -> None:
    limits = _limits(request)
    limits.known_keys.discard(key_hash)
    limits.key_attempts.count(client_address(request))


def registration_limited(request: Request, staff_level: int | None) -> None:
    if staff_level is None or staff_level < ADMIN_LEVEL:
        _limits(request).registrations.enforce(client_address(request))


def deposit_limited(request: Request, reseller_id: int) -> None:
    _limits(request).deposits.enforce(str(reseller_id))


def public_lookup_limited(request: Request) -> None:
    _limits(request).public_lookups.enforce(client_address(request))
