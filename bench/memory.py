"""A server worker's memory at steady state (issues 17-18): `idp serve --workers 2`.

    .venv/bin/python bench/memory.py [--tokens 900] [--logins 100]

A fresh SQLite instance (``IDP_DATABASE_URL`` in the environment: that database instead) with
one API, one m2m client and its grant, one web app and one user. The server is measured right
after start (both workers have booted and answered), then after ``--tokens`` client-credentials
requests and ``--logins`` full logins (``bench/login.py``'s: /authorize, the password form, the
code at the token endpoint), interleaved. Prints RSS and PSS (``/proc/PID/smaps_rollup``) of
the master and each worker, and flags a worker at or over the targets: 150 MB RSS (issue 17),
120 MB PSS. Exits 1 when a request failed.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from login import PASSWORD, REDIRECT, one_login
from run import (
    API,
    HOST,
    SCOPE,
    free_port,
    idp_binary,
    idp_cli,
    idp_json,
    process_group,
    provision_idp,
    wait_ready,
)

RSS_TARGET_MB = 150
PSS_TARGET_MB = 120


def memory(master: int) -> list[tuple[int, str, float, float]]:
    """(pid, role, RSS MB, PSS MB): the master, its children (the workers), and anything else
    in the server's process group (an Actions sandbox's zygote) as ``other``."""
    rows = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != master:  # process group
                continue
            pid, parent = int(stat.parent.name), int(fields[1])
            rss = int((stat.parent / "status").read_text().split("VmRSS:")[1].split()[0]) / 1024
            rollup = (stat.parent / "smaps_rollup").read_text()
            pss = int(rollup.split("\nPss:")[1].split()[0]) / 1024
        except (OSError, IndexError, ValueError):
            continue
        role = "master" if pid == master else "worker" if parent == master else "other"
        rows.append((pid, role, rss, pss))
    return sorted(rows, key=lambda row: (row[1] != "master", row[0]))


def show(title: str, rows: list[tuple[int, str, float, float]]) -> None:
    print(title)
    for pid, role, rss, pss in rows:
        over = role == "worker" and (rss >= RSS_TARGET_MB or pss >= PSS_TARGET_MB)
        flag = "  OVER" if over else ""
        print(f"  {role:6} pid {pid:7}  RSS {rss:6.1f} MB  PSS {pss:6.1f} MB{flag}")


def token(base: str, client_id: str, secret: str) -> None:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    body = urlencode({"grant_type": "client_credentials", "audience": API, "scope": SCOPE})
    req = urllib.request.Request(
        f"{base}/oauth/token", data=body.encode(), headers={"Authorization": f"Basic {basic}"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        if resp.status != 200:
            raise RuntimeError(f"token answered {resp.status}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=900)
    parser.add_argument("--logins", type=int, default=100)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="idp-memory-bench-") as tmp:
        instance, port = Path(tmp) / "instance", free_port()
        base = f"http://{HOST}:{port}"
        env = {**os.environ, "IDP_ISSUER": base}
        instance.mkdir()
        m2m = provision_idp(instance, env)
        app = idp_json(
            instance, env, "clients", "create", "--name", "web", "--type", "regular_web",
            "--redirect-uri", REDIRECT,
        )  # fmt: skip
        email = "bench@example.test"
        idp_cli(instance, env, "users", "create", "--email", email, "--password", PASSWORD)
        web = (str(app["client_id"]), str(app["client_secret"]), email, PASSWORD)
        cmd = [idp_binary(), "--instance", str(instance), "serve", "--host", HOST,
               "--port", str(port), "--workers", "2"]  # fmt: skip
        errors: list[str] = []
        with process_group(cmd, Path(tmp) / "serve.log", env) as proc:
            wait_ready(base, proc, Path(tmp) / "serve.log")
            for _ in range(4):  # each worker has most likely answered once
                token(base, *m2m)
            time.sleep(1)
            show("right after start (4 token requests)", memory(proc.pid))
            total = args.tokens + args.logins
            every = max(total // max(args.logins, 1), 1)
            logins = 0
            for i in range(total):
                try:
                    if logins < args.logins and i % every == 0:
                        one_login(base, *web)
                        logins += 1
                    else:
                        token(base, *m2m)
                except (OSError, RuntimeError, urllib.error.URLError, KeyError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(1)
            show(f"after {total - logins} tokens and {logins} logins", memory(proc.pid))
    if errors:
        print(f"{len(errors)} failed requests, e.g. {errors[0]}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
