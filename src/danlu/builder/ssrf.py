"""Outbound HTTP for apps, guarded against server-side request forgery.

An app's HTTP node (and the agents' fetch tool) may only reach public
addresses. The host is resolved once, every address it resolves to is checked
(loopback, link-local — including the cloud metadata address 169.254.169.254 —
private, shared, multicast and reserved ranges are refused unless an admin
allowed them with ``DANLU_BUILDER_HTTP_ALLOW``), and the request then goes to
the checked address itself, so a second DNS answer cannot swap it for an
internal one. Redirects are followed by hand, each hop checked the same way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from danlu.core.errors import InvalidRequest, PermissionDenied, UpstreamError, UpstreamTimeout

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_REDIRECTS = 5


class BlockedAddress(PermissionDenied):
    """The URL points at an address apps may not reach."""


def parse_allowlist(raw: str) -> list[Network]:
    networks = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise InvalidRequest(
                f"DANLU_BUILDER_HTTP_ALLOW: {item!r} is not an address or CIDR range"
            ) from None
    return networks


_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, not public


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    ):
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return address not in _SHARED
    return not address.is_site_local


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    address: Address


async def check_url(url: str, allow: Iterable[Network]) -> Target:
    """Resolve and check ``url``; return the address to connect to."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"{url!r} is not an http(s) URL", param="url")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UpstreamError(f"cannot resolve {host!r}") from None
    addresses = sorted({ipaddress.ip_address(info[4][0]) for info in infos}, key=str)
    allowed = list(allow)
    for address in addresses:
        if not is_public(address) and not any(address in net for net in allowed):
            raise BlockedAddress(
                f"{host} resolves to {address}, a loopback, private, link-local or reserved "
                "address apps may not reach; an admin can allow it with DANLU_BUILDER_HTTP_ALLOW",
                code="ssrf_blocked",
            )
    return Target(url, host, addresses[0])


async def guarded_request(
    method: str,
    url: str,
    *,
    allow: Iterable[Network],
    headers: dict[str, str],
    content: bytes | None,
    timeout_seconds: float,
    max_bytes: int,
) -> httpx.Response:
    """Send a request to a checked address, following redirects only to checked addresses."""
    allowed = list(allow)
    for _ in range(MAX_REDIRECTS + 1):
        target = await check_url(url, allowed)
        parts = urllib.parse.urlsplit(url)
        literal = f"[{target.address}]" if target.address.version == 6 else str(target.address)
        netloc = literal + (f":{parts.port}" if parts.port else "")
        pinned = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        extensions = {"sni_hostname": target.host} if parts.scheme == "https" else {}
        request_headers = {**headers, "Host": parts.netloc}
        try:
            async with httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False) as client:
                request = client.build_request(
                    method, pinned, headers=request_headers, content=content, extensions=extensions
                )
                response = await client.send(request, stream=True)
                try:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > max_bytes:
                            raise InvalidRequest(
                                f"the response from {target.host} is larger than {max_bytes} bytes"
                            )
                finally:
                    await response.aclose()
        except httpx.TimeoutException:
            raise UpstreamTimeout(
                f"{target.host} did not answer within {timeout_seconds} s"
            ) from None
        except httpx.HTTPError as exc:
            raise UpstreamError(f"request to {target.host} failed: {exc}") from None
        if response.is_redirect and "location" in response.headers:
            url = urllib.parse.urljoin(url, response.headers["location"])
            method, content = (
                ("GET", None) if response.status_code in (301, 302, 303) else (method, content)
            )
            continue
        return httpx.Response(
            response.status_code, headers=response.headers, content=bytes(body), request=request
        )
    raise UpstreamError(f"more than {MAX_REDIRECTS} redirects")
