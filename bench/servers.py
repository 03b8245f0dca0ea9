"""Which WSGI server: idp's client-credentials tokens under each, against oidc-provider.

    .venv/bin/python bench/servers.py [--servers peer,gunicorn,granian,granian-t2,uwsgi]
        [--rounds 3] [--duration 10] [--slow]

Every token freshly signed (idp's default), SQLite, wrk with 16 keep-alive connections
(bench/load.py), 2 workers (or processes) each, rounds alternating in order; prints each
round's requests/s, the ratio to the peer's same round, and the CPU the server's process group
used per token (from /proc). ``uwsgi`` runs only when ``.venv/bin/uwsgi`` exists (``pip install
uwsgi``: not a dependency of idp; measured, not wired). ``--slow``: instead, how many of 12
requests (each on a new connection, 3 s timeout) are answered while one and then two clients
hold a request whose body they send no further (bench/README.md, "Which server").
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cpu import group_cpu
from run import (
    API,
    BENCH,
    HOST,
    SCOPE,
    Target,
    free_port,
    idp_binary,
    idp_cli,
    idp_env,
    process_group,
    provision_idp,
    run_load,
    token_path_from,
    verify_token,
    wait_ready,
)

VENV = Path(__file__).resolve().parent.parent / ".venv" / "bin"
SLOW_HEAD = (
    b"POST /oauth/token HTTP/1.1\r\nHost: idp\r\nContent-Type: "
    b"application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type="
)


def command(name: str, instance: Path, port: int) -> list[str]:
    serve = [idp_binary(), "--instance", str(instance), "serve", "--host", HOST, "--port",
             str(port), "--workers", "2"]  # fmt: skip
    return {
        "gunicorn": [*serve, "--server", "gunicorn"],
        "granian": [*serve, "--server", "granian", "--threads", "1"],
        "granian-t2": [*serve, "--server", "granian", "--threads", "2"],
        "uwsgi": [str(VENV / "uwsgi"), "--http-socket", f"{HOST}:{port}", "--http-keepalive",
                  "--processes", "2", "--master", "--module", "idp.wsgi:app", "--need-app",
                  "--lazy-apps", "--die-on-term", "--disable-logging"],
    }[name]  # fmt: skip


def one(name: str, work: Path, instance: Path, creds: tuple[str, str], seconds: float) -> tuple:
    port = free_port()
    base = f"http://{HOST}:{port}"
    if name == "peer":
        secret = secrets.token_urlsafe(32)
        env = {**os.environ, "PEER_CLIENT_ID": "bench", "PEER_CLIENT_SECRET": secret}
        cmd = [shutil.which("node") or "node", str(BENCH / "peer.mjs"), "--port", str(port),
               "--workers", "2", "--audience", API, "--scope", SCOPE]  # fmt: skip
        target = Target("peer", base, "bench", secret, {"resource": API, "scope": SCOPE})
    else:
        env = {**idp_env("sqlite", token_reuse=False), "IDP_ISSUER": base,
               "IDP_INSTANCE": str(instance)}  # fmt: skip
        cmd = command(name, instance, port)
        target = Target("idp", base, creds[0], creds[1], {"audience": API})
    with process_group(cmd, work / f"{name}.log", env) as proc:
        target.token_path = token_path_from(wait_ready(base, proc, work / f"{name}.log"), "/token")
        verify_token(target)
        run_load(target.token_url, target.auth, target.params, 2)
        before = group_cpu(proc.pid)
        result = run_load(target.token_url, target.auth, target.params, seconds)
        cpu = (group_cpu(proc.pid) - before) / max(result.rps * seconds, 1) * 1e3
    return result.rps, cpu, result.p99_ms


def answered(port: int, slow_clients: int) -> int:
    slow = [socket.create_connection((HOST, port)) for _ in range(slow_clients)]
    try:
        for conn in slow:
            conn.sendall(SLOW_HEAD)
        time.sleep(0.5)
        ok = 0
        for _ in range(12):
            conn = http.client.HTTPConnection(HOST, port, timeout=3)
            try:
                conn.request("GET", "/health/live")
                ok += conn.getresponse().status == 200
            except OSError:
                pass
            finally:
                conn.close()
        return ok
    finally:
        for conn in slow:
            conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="peer,gunicorn,granian,granian-t2,uwsgi")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--slow", action="store_true")
    args = parser.parse_args()
    names = [n for n in args.servers.split(",") if n != "uwsgi" or (VENV / "uwsgi").exists()]
    work = Path(tempfile.mkdtemp(prefix="idp-servers-"))
    instance = work / "instance"
    env = idp_env("sqlite", token_reuse=False)
    creds = provision_idp(instance, env) if not args.slow else ("", "")
    if args.slow:
        idp_cli(instance, env, "init")
        for name in (n for n in names if n not in ("peer", "uwsgi")):
            port = free_port()
            base = f"http://{HOST}:{port}"
            with process_group(command(name, instance, port), work / "slow.log",
                               {**env, "IDP_ISSUER": base}) as proc:  # fmt: skip
                wait_ready(base, proc, work / "slow.log")
                print(f"{name:11} answered with 1 slow client {answered(port, 1)}/12, "
                      f"with 2: {answered(port, 2)}/12", flush=True)  # fmt: skip
        return 0
    rows: dict[str, list[tuple]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            rows[name].append(one(name, work, instance, creds, args.duration))
            rps, cpu, p99 = rows[name][-1]
            print(f"round {r + 1} {name:11} {rps:7.0f} req/s  {cpu:.3f} ms CPU a token  "
                  f"p99 {p99:.1f} ms", flush=True)  # fmt: skip
    for name, results in rows.items():
        peer = rows.get("peer", results)
        ratios = ", ".join(f"{a[0] / b[0]:.2f}" for a, b in zip(results, peer, strict=True))
        cpu = ", ".join(f"{x[1]:.3f}" for x in results)
        median = statistics.median(x[0] for x in results)
        print(f"{name:11} median {median:7.0f} req/s; CPU ms a token {cpu}; /peer: {ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
