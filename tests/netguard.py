"""A socket-level guard for tests that must not leave the machine: loopback and Unix only."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest


class NetworkAttempt(AssertionError):
    """A test tried to reach beyond the machine."""


def is_local(address: Any) -> bool:
    """Whether a socket address (or a host to look up) stays on this machine."""
    if not isinstance(address, tuple):
        return True  # AF_UNIX path
    host = str(address[0])
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def block_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Make connect, connect_ex and name look-ups beyond loopback raise NetworkAttempt.

    Returns the list the attempts are recorded in (a test asserts it stays empty, since the
    library under test may swallow the exception).
    """
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def refuse(what: Any) -> None:
        attempts.append(what)
        raise NetworkAttempt(f"network access attempted: {what}")

    def connect(self: socket.socket, address: Any) -> Any:
        if not is_local(address):
            refuse(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        if not is_local(address):
            refuse(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        if not is_local((host, 0)):
            refuse(host)
        return real_getaddrinfo(host, *args, **kw)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts
