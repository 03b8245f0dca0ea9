"""A/B: this checkout against an earlier commit, request by request, in the same run.

    .venv/bin/python bench/ab.py --against 16fb89e [--seconds 8] [--rounds 2]

The machine's speed drifts by more than the differences a change makes (two runs of the same
code a minute apart differed by 0.3 ms a request), so comparing two benchmark runs one after
the other says little. This starts both versions side by side (2 gunicorn workers each, SQLite,
token reuse off) and alternates single requests between them, so each pair sees the same
moment of the machine:

- client_credentials with no action bound;
- client_credentials with one credentials-exchange action bound (the per-action path);
- a whole browserless login (GET /authorize, POST the form, POST /oauth/token), one at a time:
  both pay the same argon2id hash, so the difference is the difference in overhead.

The earlier commit runs from a git worktree in a temporary folder with this checkout's
virtualenv (its dependencies must be the same); nothing is installed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from actions import CC_ACTION, deploy, interleaved, m2m_instance, serve_cmd
from login import PASSWORD, REDIRECT, one_login
from run import HOST, REPO, free_port, idp_cli, idp_json, process_group, wait_ready

LAUNCHER = """\
import os, sys
sys.path.insert(0, {root!r})
os.chdir({root!r})  # gunicorn is started with -m: the working directory comes first on sys.path
from idp.cli import main
sys.exit(main())
"""


def worktree(rev: str, tmp: Path) -> str:
    """An ``idp`` command running ``rev``'s code with this virtualenv's Python."""
    root = tmp / "ab-base"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-f", str(root), rev],
                   check=True, capture_output=True)  # fmt: skip
    (root / "ab_launch.py").write_text(LAUNCHER.format(root=str(root)))
    command = root / "ab-idp"
    command.write_text(f'#!/bin/sh\nexec {sys.executable} {root / "ab_launch.py"} "$@"\n')
    command.chmod(0o755)
    return str(command)


def instance(tmp: Path, name: str, binary: str, action: bool) -> dict[str, object]:
    os.environ["BENCH_IDP"] = binary  # read by run.idp_binary() at each call
    path, port = tmp / name, free_port()
    base = f"http://{HOST}:{port}"
    env = {**os.environ, "IDP_ISSUER": base, "IDP_CC_TOKEN_REUSE_SECONDS": "0"}
    env.pop("IDP_DATABASE_URL", None)
    auth = m2m_instance(path, env)
    if action:
        deploy(path, env, "cc", "credentials-exchange", CC_ACTION.format(n=0))
    web = idp_json(path, env, "clients", "create", "--name", "web", "--type", "regular_web",
                   "--redirect-uri", REDIRECT)  # fmt: skip
    idp_cli(path, env, "users", "create", "--email", "ab@example.test", "--password", PASSWORD)
    creds = (str(web["client_id"]), str(web["client_secret"]), "ab@example.test", PASSWORD)
    return {"base": base, "env": env, "auth": auth, "creds": creds,
            "cmd": serve_cmd(path, port), "log": tmp / f"{name}.log"}  # fmt: skip


def logins(a: dict[str, object], b: dict[str, object], seconds: float) -> tuple[list[float], ...]:
    times: tuple[list[float], list[float]] = ([], [])
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        for side, server in enumerate((a, b)):
            start = time.perf_counter()
            one_login(str(server["base"]), *server["creds"])  # type: ignore[misc]
            times[side].append((time.perf_counter() - start) * 1000)
    return times


def compare(label: str, base: list[float], head: list[float]) -> str:
    b, h = statistics.median(base), statistics.median(head)
    return (f"  {label:<38} base p50 {b:7.2f} ms   this p50 {h:7.2f} ms   "
            f"this-base {h - b:+6.2f} ms ({(h - b) / b:+.1%}, n={len(head)})")  # fmt: skip


def measure(tmp: Path, binary: str, action: bool, seconds: float, n: int) -> list[str]:
    base = instance(tmp, f"base-{n}-{action}", binary, action)
    head = instance(tmp, f"head-{n}-{action}", str(REPO / ".venv" / "bin" / "idp"), action)
    with process_group(base["cmd"], base["log"], base["env"]) as p1:  # type: ignore[arg-type]
        wait_ready(str(base["base"]), p1, base["log"])  # type: ignore[arg-type]
        with process_group(head["cmd"], head["log"], head["env"]) as p2:  # type: ignore[arg-type]
            wait_ready(str(head["base"]), p2, head["log"])  # type: ignore[arg-type]
            pair = [(str(base["base"]), str(base["auth"])), (str(head["base"]), str(head["auth"]))]
            interleaved(pair, 1.0)
            label = "client_credentials, " + ("one action" if action else "no action")
            lines = [compare(label, *interleaved(pair, seconds))]
            if not action:
                logins(base, head, 1.0)
                lines.append(compare("login (c1, hash included)", *logins(base, head, seconds)))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="the commit to compare with")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="idp-ab-") as tmp:
        binary = worktree(args.against, Path(tmp))
        try:
            print(f"A/B: this checkout against {args.against}, interleaved request by request")
            for n in range(args.rounds):
                print(f" round {n + 1}")
                for action in (False, True):
                    for text in measure(Path(tmp), binary, action, args.seconds, n):
                        print(text, flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                            str(Path(tmp) / "ab-base")], check=False)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
