"""Load driver: hammer a token endpoint with client_credentials requests through wrk.

wrk (Debian package ``wrk``) keeps 16 keep-alive connections busy from one thread for a fixed
duration; ``token.lua`` builds the request and counts status codes. Only loopback targets are
accepted.

    python bench/load.py --url http://127.0.0.1:5601/token --client-id bench \\
        --client-secret S --param resource=https://api.bench.test --duration 5
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path

LUA_SCRIPT = Path(__file__).resolve().parent / "token.lua"
RESULT_PREFIX = "BENCH_RESULT "
CONNECTIONS = 16
THREADS = 1


@dataclass
class LoadResult:
    """Outcome of one wrk run against one token endpoint."""

    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    socket_errors: dict[str, int] = field(default_factory=dict)

    @property
    def non_200(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != "200")

    @property
    def error_count(self) -> int:
        """Non-200 responses plus connect/read/write errors and timeouts."""
        socket = sum(v for k, v in self.socket_errors.items() if k != "status")
        return self.non_200 + socket

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["non_200"] = self.non_200
        data["error_count"] = self.error_count
        return data


def basic_auth(client_id: str, client_secret: str) -> str:
    """RFC 6749 §2.3.1 Basic credentials: form-urlencode each part, then base64."""
    user = urllib.parse.quote(client_id, safe="")
    password = urllib.parse.quote(client_secret, safe="")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def check_loopback(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"load target must be on loopback, got {url!r}")


def ensure_wrk() -> str:
    """Return the wrk binary, installing the Debian package when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("bench: wrk not found, installing the Debian package", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is still missing after apt-get install")
    return found


def parse_result(stdout: str) -> LoadResult:
    line = next((ln for ln in stdout.splitlines() if ln.startswith(RESULT_PREFIX)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result line:\n{stdout}")
    raw = json.loads(line[len(RESULT_PREFIX) :])
    duration_s = raw["duration_us"] / 1e6
    return LoadResult(
        requests=raw["requests"],
        duration_s=round(duration_s, 3),
        rps=round(raw["requests"] / duration_s, 1) if duration_s else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        statuses={str(k): v for k, v in raw["statuses"].items()},
        socket_errors=raw["errors"],
    )


def run_load(
    url: str,
    auth: str,
    params: dict[str, str],
    duration: float,
    connections: int = CONNECTIONS,
) -> LoadResult:
    """Run wrk for ``duration`` seconds and return its figures."""
    check_loopback(url)
    wrk = ensure_wrk()
    body = urllib.parse.urlencode({"grant_type": "client_credentials", **params})
    env = {**os.environ, "BENCH_BODY": body, "BENCH_AUTH": auth}
    seconds = max(1, round(duration))
    cmd = [wrk, f"-t{THREADS}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    cmd += ["--latency", "-s", str(LUA_SCRIPT), url]
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return parse_result(proc.stdout)


def format_result(name: str, result: LoadResult) -> str:
    line = (
        f"{name}: {result.rps:.1f} req/s, p50 {result.p50_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms, {result.requests} requests, statuses {result.statuses}"
    )
    if result.error_count:
        line += f"\n!!! {name}: {result.error_count} FAILED REQUESTS (non-200 or socket errors)"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--param", action="append", default=[], help="extra form field k=v")
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    args = parser.parse_args(argv)
    params = dict(p.split("=", 1) for p in args.param)
    auth = basic_auth(args.client_id, args.client_secret)
    result = run_load(args.url, auth, params, args.duration, args.connections)
    print(format_result(args.url, result))
    print(json.dumps(result.to_dict()))
    return 1 if result.error_count else 0


if __name__ == "__main__":
    sys.exit(main())
