"""The client address of a request: the socket peer, or X-Forwarded-For from a trusted proxy."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from mailbeacon.core.ipranges import parse_ip
from mailbeacon.server.config import Network


class TrustedProxies:
    """Resolves the client address given the proxies the operator trusts."""

    def __init__(self, networks: Sequence[Network] = ()) -> None:
        self._networks = tuple(networks)
        self._trusted = lru_cache(maxsize=1024)(self._is_trusted)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def _is_trusted(self, address: str) -> bool:
        ip = parse_ip(address)
        return ip is not None and any(ip in net for net in self._networks)

    def client_ip(self, peer: str, forwarded_for: Sequence[bytes]) -> str:
        """``peer`` unless it is a trusted proxy; then the right-most X-Forwarded-For
        address that is not itself a trusted proxy (left of it, anyone can write
        anything)."""
        if not self._networks or not forwarded_for or not self._trusted(peer):
            return peer
        hops = b",".join(forwarded_for).decode("latin-1").split(",")
        current = peer
        for raw in reversed(hops):
            ip = parse_ip(raw.strip())
            if ip is None:
                break  # a hop we cannot read: trust nothing further left
            current = str(ip)
            if not self._trusted(current):
                break
        return current

