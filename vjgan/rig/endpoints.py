"""Where OSC listens and where it sends: `PORT`, `HOST:PORT`, checked into one line when wrong.

A bare port listens on loopback only: anyone on a venue's network could otherwise steer the show,
so listening on the network is the explicit `0.0.0.0:PORT`.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from ..errors import UserError

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_endpoint(text: str, option: str) -> Endpoint:
    """`"9000"` → 127.0.0.1:9000; `"0.0.0.0:9000"`, `"host:9000"` as given (the host must resolve)."""
    text = str(text).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = LOOPBACK, text
    host = host.strip("[]") or LOOPBACK
    try:
        port = int(port_text)
    except ValueError:
        raise UserError(f"{option} {text}: expected PORT or HOST:PORT (e.g. 9000 or 0.0.0.0:9000)") from None
    if not 1 <= port <= 65535:
        raise UserError(f"{option} {text}: the port must be 1–65535")
    try:
        socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as e:
        raise UserError(f"{option} {text}: unknown host {host!r} ({e})") from None
    return Endpoint(host, port)
