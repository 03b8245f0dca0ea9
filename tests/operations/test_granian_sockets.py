"""``idp serve --server granian``'s listening sockets (idp/ops/granian_serve.py): one per worker,
bound and kept open by the main process. A burst of connections (a client's pool, wrk's 16)
reaches every worker, where one socket shared by the workers gave it to whichever worker woke
first; and connections queued at a worker that dies wait for its replacement, never reset."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.operations.served import IDP, Served, served, server_env

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("granian") is None,
    reason="granian is not installed (pip install 'idp[granian]')",
)

REQUEST = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("granian-sockets")
    with served(tmp / "instance", "--workers", "2", server="granian") as running:
        yield running


def _workers(server: Served) -> set[int]:
    raw = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text()
    return {int(pid) for pid in raw.split()}


def _owners(server: Served, client_ports: set[int]) -> Counter[int]:
    """How many of the server-side ends of the connections from ``client_ports`` each worker
    holds (the accepted sockets in its file descriptors, from /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
        if int(local, 16) == server.port and int(remote, 16) in client_ports:
            inodes.add(f"socket:[{fields[9]}]")
    held: Counter[int] = Counter()
    for pid in _workers(server):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                held[pid] += os.readlink(f"/proc/{pid}/fd/{fd}") in inodes
            except OSError:
                continue
    return held


def _answered(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(64).startswith(b"HTTP/1.1 200")
    except TimeoutError:
        return False


def test_a_burst_of_connections_reaches_every_worker(server: Served) -> None:
    conns = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(64)]
    try:
        for conn in conns:
            conn.sendall(REQUEST)
        assert all(_answered(conn, 30) for conn in conns)  # each accepted by now
        held = _owners(server, {conn.getsockname()[1] for conn in conns})
        # spread by the kernel's hash: fewer than 8 of 64 on a worker has a chance of 3e-10
        assert sum(held.values()) == 64 and len(held) == 2, held
        assert min(held.values()) >= 8, held
    finally:
        for conn in conns:
            conn.close()


def test_connections_queued_at_a_dead_worker_wait_for_its_replacement(server: Served) -> None:
    victim = min(_workers(server))
    os.kill(victim, signal.SIGSTOP)  # it accepts nothing more: connections queue at its socket
    _until_stopped(victim)  # every thread: one still running could accept, and die with them
    conns = []
    try:
        conns = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(24)]
        for conn in conns:
            conn.sendall(REQUEST)
        waiting = [conn for conn in conns if not _answered(conn, 2)]
        assert waiting, "every connection went to the other worker (chance 6e-8)"
        os.kill(victim, signal.SIGKILL)
        for _ in range(600):  # the main process starts another worker on the same socket
            if victim not in _workers(server) and len(_workers(server)) == 2:
                break
            time.sleep(0.1)
        assert all(_answered(conn, 60) for conn in waiting)  # none reset, none lost
    finally:
        for conn in conns:
            conn.close()


def _until_stopped(pid: int) -> None:
    """Until every thread of ``pid`` is stopped (a signal reaches the threads one by one)."""
    for _ in range(500):
        states = [(task / "stat").read_text().rsplit(")", 1)[1].split()[0]
                  for task in Path(f"/proc/{pid}/task").iterdir()]  # fmt: skip
        if all(state == "T" for state in states):
            return
        time.sleep(0.01)
    raise AssertionError(f"{pid} not stopped: {states}")


def test_a_second_server_on_the_same_port_stops_with_the_reason(server: Served) -> None:
    """granian's sockets share a port with SO_REUSEPORT: a second ``idp serve`` on it would
    bind beside the first and silently take a share of its connections; it stops instead."""
    argv = [*IDP, "--instance", str(server.instance), "serve", "--host", "127.0.0.1",
            "--port", str(server.port), "--server", "granian"]  # fmt: skip
    second = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, check=False,
        env=server_env(server.url, server.app),
    )  # fmt: skip
    assert second.returncode != 0
    assert f"cannot listen on 127.0.0.1:{server.port}" in second.stdout + second.stderr
    assert _answered_by_live(server)  # the first server goes on


def _answered_by_live(server: Served) -> bool:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(REQUEST)
        return _answered(conn, 10)
