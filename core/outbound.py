"""Where Loket may send a reseller's callback: public addresses only (no SSRF).

A reseller chooses its callback URL, and Loket POSTs to it from inside the network. Without a
check, a URL such as http://127.0.0.1:9191/metrics, http://10.0.0.5/ or the cloud metadata
address 169.254.169.254 would make Loket call its own internal services. Three checks, because
each alone can be dodged:

- the URL itself (refused_callback_url), when it is registered and again before each delivery:
  the scheme, no credentials, and a host that is neither a non-public IP literal nor a local
  name. The host is read as aiohttp reads it (yarl: IDNA-encoded, so a fullwidth or circled
  "１２７.0.0.1" or "127。0。0.1" is checked as the 127.0.0.1 it becomes), and an address that
  embeds an IPv4 address (IPv4-mapped, -compatible, NAT64, 6to4, Teredo) is judged by it too;
- every address a host name resolves to at connection time (PublicOnlyResolver), so a name that
  resolves, or is later re-pointed, to a private address is refused;
- the address each socket is about to connect to (public_only_socket), which aiohttp reaches
  without its resolver for an IP literal: whatever the URL check missed is refused there.

CALLBACK_ALLOW_PRIVATE_NETWORKS=true turns them off for local development and the tests, whose
receivers listen on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")
# Not public although Python's is_global says so: IETF protocol assignments (192.0.0.9 and
# .10 included: no callback endpoint lives there), site-local and NAT64 local-use IPv6.
_NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in ("192.0.0.0/24", "fec0::/10", "64:ff9b:1::/48"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class NonPublicAddress(OSError):
    """A callback connection to a non-public address, refused before it was made."""


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, to which a connection to it may lead:
    IPv4-mapped (::ffff:a.b.c.d), -translated (::ffff:0:a.b.c.d), -compatible (::a.b.c.d),
    NAT64 (64:ff9b::a.b.c.d), 6to4 (2002:aabb:ccdd::) and Teredo (server and client)."""
    low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if int(ip) >> 32 == 0 or ip in _TRANSLATED or ip in _NAT64:
        return [low]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    return []


def is_public_address(address: str | Address) -> bool:
    """A globally routable unicast address: not loopback, private, link-local, shared, reserved,
    site-local, nor one that carries such an IPv4 address."""
    ip = address if isinstance(address, Address) else ipaddress.ip_address(address.split("%", 1)[0])
    if any(ip in network for network in _NOT_PUBLIC if network.version == ip.version):
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner:
            return all(is_public_address(v4) for v4 in inner)
    return ip.is_global and not ip.is_multicast


def _ip_literal(host: str) -> Address | None:
    """The address a host names when it is one, including the shorthand IPv4 forms that the
    system's resolver reads as addresses (127.1, 0x7f.0.0.1, 2130706433)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fx.]+", host) and not host.endswith("."):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def refused_callback_url(url: str, *, allow_private_networks: bool = False) -> str | None:
    """Why this URL may not be called back (a sentence for the reseller), or None when it may.

    allow_private_networks: the CALLBACK_ALLOW_PRIVATE_NETWORKS setting; True allows every URL.
    """
    if allow_private_networks:
        return None
    try:
        # As the callback client reads it: the host it connects to is yarl's, not urlsplit's.
        parts = URL(url)
        port = parts.port
        raw_host = parts.raw_host
    except (ValueError, UnicodeError) as error:
        return f"not a valid URL ({error})"
    if parts.scheme not in ("http", "https"):
        return "the scheme must be http or https"
    if parts.user is not None or parts.password is not None:
        return "credentials in the URL are not allowed"
    host = (raw_host or "").lower()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        return "the URL has no host"
    if port == 0:
        return "port 0 is not a valid port"
    if "%" in host:
        return "an address with a zone id is not a public address"
    ip = _ip_literal(host)
    if ip is None:
        if not host.isascii() or not _HOST_NAME.fullmatch(host):
            return f"{host!r} is not a valid host name"
        if host == "localhost" or host.endswith(_LOCAL_SUFFIXES) or "." not in host:
            return f"{host} is a local name; use a public host name"
        return None
    if not is_public_address(ip):
        return f"{ip} is not a public address"
    return None


def callback_resolver(*, allow_private_networks: bool) -> AbstractResolver | None:
    """The resolver of the callback HTTP client: PublicOnlyResolver, or aiohttp's own (None) when
    private networks are allowed."""
    return None if allow_private_networks else PublicOnlyResolver()


def public_only_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """The callback client's socket factory (aiohttp's socket_factory): a socket for a public
    address only. Called for every address aiohttp connects to, IP literals included, which
    never pass through the resolver."""
    family, type_, proto, _canonname, sockaddr = addr_info
    if not is_public_address(sockaddr[0]):
        raise NonPublicAddress(f"{sockaddr[0]} is not a public address; callbacks go to public addresses only")
    return socket.socket(family=family, type=type_, proto=proto)


def callback_connector(*, allow_private_networks: bool, **options: Any) -> aiohttp.TCPConnector:
    """The connector of the callback HTTP client: public addresses only, unless private networks
    are allowed. options: the other TCPConnector arguments (limit, keepalive_timeout)."""
    if allow_private_networks:
        return aiohttp.TCPConnector(**options)
    return aiohttp.TCPConnector(resolver=PublicOnlyResolver(), socket_factory=public_only_socket, **options)


def refused_connection(failure: BaseException) -> bool:
    """Whether a failed callback was refused here as bound for a non-public address (rather than
    failing at the other end)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [failure]
    while todo:
        error = todo.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, NonPublicAddress) or "callbacks go to public addresses only" in str(error):
            return True
        todo += [error.__cause__, error.__context__, getattr(error, "os_error", None)]
    return False


class PublicOnlyResolver(AbstractResolver):
    """aiohttp's resolver, keeping only public addresses; a host with none fails to connect."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [entry for entry in found if is_public_address(entry["host"])]
        if not public:
            raise NonPublicAddress(f"{host} resolves only to non-public addresses; callbacks go to public addresses only")
        return public

    async def close(self) -> None:
        await self._inner.close()
