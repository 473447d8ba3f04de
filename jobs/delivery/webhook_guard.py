"""Which callback URLs a webhook may go to: pure checks, run at submit and again before each
delivery (a host's DNS answer may change in between). Imported by the API and the worker.

A delivery connects to an address `checked_addresses` returned, never to the name: a second
lookup at connect time could answer differently (DNS rebinding) and reach an internal host."""

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

MAX_CALLBACK_URL_LENGTH = 2000

Resolver = Callable[[str], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeCallback(ValueError):
    """The URL is malformed or points somewhere a webhook must not go; says why."""


def resolve_host(host: str) -> list[str]:
    """Every address the host resolves to (IPv4 and IPv6)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)]


def forbidden_kind(address: IPAddress) -> str | None:
    """Why a webhook may not go to this address, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # Order matters: 127/8 and 169.254/16 also count as private in the ipaddress module.
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not a public", not address.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def check_callback_url(url: str, allow_private: bool, resolve: Resolver = resolve_host) -> None:
    """Raise UnsafeCallback unless `url` is http(s) and its host resolves only to public
    addresses (any address, with `allow_private`)."""
    host = _callback_host(url)
    if not allow_private:
        _check_addresses(host, _addresses(host, resolve))


def checked_addresses(
    url: str, allow_private: bool, resolve: Resolver = resolve_host
) -> list[IPAddress]:
    """The addresses a delivery to `url` may connect to: its host resolved once, every answer
    checked as `check_callback_url` does. Raises UnsafeCallback."""
    host = _callback_host(url)
    addresses = _addresses(host, resolve)
    if not allow_private:
        _check_addresses(host, addresses)
    if not addresses:
        raise UnsafeCallback(f"callback_url host {host!r} does not resolve")
    return addresses


def _callback_host(url: str) -> str:
    if len(url) > MAX_CALLBACK_URL_LENGTH:
        raise UnsafeCallback(f"callback_url must be at most {MAX_CALLBACK_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise UnsafeCallback(f"callback_url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeCallback("callback_url must be an http:// or https:// URL with a host")
    return parts.hostname


def _addresses(host: str, resolve: Resolver) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        return [ipaddress.ip_address(a.split("%")[0]) for a in resolve(host)]
    except (OSError, UnicodeError) as exc:
        raise UnsafeCallback(f"callback_url host {host!r} does not resolve: {exc}") from None


def _check_addresses(host: str, addresses: list[IPAddress]) -> None:
    for address in addresses:
        kind = forbidden_kind(address)
        if kind is not None:
            raise UnsafeCallback(
                f"callback_url host {host!r} resolves to {address}, a {kind} address; "
                "webhooks go only to public addresses (WEBHOOK_ALLOW_PRIVATE=true allows others)"
            )
