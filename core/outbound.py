"""Where Loket may send a reseller's callback: public addresses only (no SSRF).

A reseller chooses its callback URL, and Loket POSTs to it from inside the network. Without a
check, a URL such as http://127.0.0.1:9191/metrics, http://10.0.0.5/ or the cloud metadata
address 169.254.169.254 would make Loket call its own internal services. Two checks, because
either alone can be dodged:

- the URL itself (refused_callback_url), when it is registered and again before each delivery:
  the scheme, no credentials, and a host that is neither a private IP literal nor a local name;
- every address a host name resolves to at connection time (PublicOnlyResolver), so a name that
  resolves, or is later re-pointed, to a private address is refused too.

CALLBACK_ALLOW_PRIVATE_NETWORKS=true turns both off for local development and the tests, whose
receivers listen on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


def is_public_address(address: str) -> bool:
    """A globally routable unicast address: not loopback, private, link-local, shared, reserved."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def refused_callback_url(url: str, *, allow_private_networks: bool = False) -> str | None:
    """Why this URL may not be called back (a sentence for the reseller), or None when it may.

    allow_private_networks: the CALLBACK_ALLOW_PRIVATE_NETWORKS setting; True allows every URL.
    """
    if allow_private_networks:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        return f"not a valid URL ({error})"
    if parts.scheme not in ("http", "https"):
        return "the scheme must be http or https"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL are not allowed"
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return "the URL has no host"
    if port == 0:
        return "port 0 is not a valid port"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(_LOCAL_SUFFIXES) or "." not in host:
            return f"{host} is a local name; use a public host name"
        return None
    if not is_public_address(host):
        return f"{host} is not a public address"
    return None


def callback_resolver(*, allow_private_networks: bool) -> AbstractResolver | None:
    """The resolver of the callback HTTP client: PublicOnlyResolver, or aiohttp's own (None) when
    private networks are allowed."""
    return None if allow_private_networks else PublicOnlyResolver()


class PublicOnlyResolver(AbstractResolver):
    """aiohttp's resolver, keeping only public addresses; a host with none fails to connect."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [entry for entry in found if is_public_address(entry["host"])]
        if not public:
            raise OSError(f"{host} resolves only to non-public addresses; callbacks go to public addresses only")
        return public

    async def close(self) -> None:
        await self._inner.close()
