"""Ports for the servers tests start.

Probing a port with ``bind(0)`` and starting a server on it later races every other process on
the machine: between the probe and the server's own bind (seconds for a gunicorn whose app is
built on PostgreSQL first), the kernel may hand the same ephemeral port to another xdist
worker's server, and the test then talks to the wrong one (CI once saw another idp's open
``/metrics`` answer a test of the token-protected one). So ports come from a block below the
kernel's ephemeral range (``net.ipv4.ip_local_port_range`` starts at 32768), a block per xdist
worker, handed out in turn: nothing else on the machine takes them and no two workers share one.
"""

from __future__ import annotations

import itertools
import os
import socket

_BASE = 20000
_BLOCK = 1500  # ports per worker; 8 workers fit below 32768


def _worker_index() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # "gw3"; absent without xdist
    digits = name.removeprefix("gw")
    return int(digits) % 8 if digits.isdigit() else 0


_start = _BASE + _worker_index() * _BLOCK
_offsets = itertools.cycle(range((os.getpid() * 7) % _BLOCK, _BLOCK + (os.getpid() * 7) % _BLOCK))


def free_port() -> int:
    """The next port of this worker's block that nothing listens on or holds."""
    for _ in range(_BLOCK):
        port = _start + next(_offsets) % _BLOCK
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {_start}..{_start + _BLOCK - 1}")
