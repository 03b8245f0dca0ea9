"""Benchmark idp's client_credentials token endpoint against oidc-provider and the RS256 ceiling.

    .venv/bin/python bench/run.py [--only idp|peer] [--db sqlite|pg|both] [--duration 20]
        [--rounds 3] [--server gunicorn|granian|both] [--variant default|sign|both]

Runs, in order: the RS256 signing ceiling (bench/ceiling.py), the oidc-provider peer
(bench/peer.mjs, 2 cluster workers) and idp (2 workers; granian, ``idp serve``'s default, with
its 2 threads a worker, and gunicorn's sync workers: ``--server``) on SQLite and PostgreSQL,
each driven by wrk (bench/load.py) with 16 keep-alive connections, in ``--rounds`` rounds (3)
whose order alternates; the table gives each target's median round, and each round's idp/peer
ratio is printed. Prints a table, the ratios idp/peer and idp/ceiling, and writes
bench/results/latest.json. Exits 1 when a run failed or answered anything but 200. idp runs
twice per database: with its opt-in reuse of client-credentials tokens turned on (idp-DB,
IDP_CC_TOKEN_REUSE_SECONDS=5) and signing every token like the peer (idp-DB-sign,
IDP_CC_TOKEN_REUSE_SECONDS=0, idp's default).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ceiling import signs_per_second
from cpu import foreign_share, snapshot
from load import CONNECTIONS, LoadResult, basic_auth, ensure_wrk, format_result, run_load

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS_FILE = BENCH / "results" / "latest.json"
HOST = "127.0.0.1"
API = "https://api.bench.test"
SCOPE = "read:things"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PSQL = ["psql", "-h", HOST, "-U", "postgres", "-d", "test", "-v", "ON_ERROR_STOP=1"]
RESET_SCHEMA = "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
DISCOVERY = "/.well-known/openid-configuration"
P99_TARGET_MS = 50.0
PEER_RATIO_TARGET = 1.0
WORKERS = 2
READY_TIMEOUT_S = 60.0
NOISE_THRESHOLD = 0.10
REUSE_ENV = "IDP_CC_TOKEN_REUSE_SECONDS"
REUSE_SECONDS = "5"  # the window of the reuse runs (off by default in idp)
PG_IDLE_TIMEOUT_S = 60.0


class BenchError(RuntimeError):
    """A run could not be set up or verified."""


@dataclass
class Target:
    """One token endpoint under test and the request that exercises it."""

    name: str
    base_url: str
    client_id: str
    client_secret: str
    params: dict[str, str]
    token_path: str = "/token"
    info: dict[str, object] = field(default_factory=dict)

    @property
    def token_url(self) -> str:
        return self.base_url + self.token_path

    @property
    def auth(self) -> str:
        return basic_auth(self.client_id, self.client_secret)


@dataclass
class Outcome:
    """Everything one invocation measured."""

    results: dict[str, LoadResult] = field(default_factory=dict)  # the median round's
    runs: dict[str, dict[str, object]] = field(default_factory=dict)
    rounds: dict[str, list[LoadResult]] = field(default_factory=dict)  # every round's
    failures: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def process_group(
    cmd: list[str], log: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``cmd`` in its own process group; terminate that group on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=REPO
        )
    try:
        yield proc
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    # The leader may be gone while children linger: make sure the group is empty.
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def log_tail(log: Path, lines: int = 25) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- HTTP


def http_request(
    method: str, url: str, body: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port, timeout=10)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(base_url: str, proc: subprocess.Popen[bytes], log: Path) -> dict[str, object]:
    """Poll discovery until it answers 200; return the discovery document."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with {proc.returncode}:\n{log_tail(log)}")
        try:
            status, body = http_request("GET", base_url + DISCOVERY)
        except OSError:
            status, body = 0, b""
        if status == 200:
            return json_object(body, base_url + DISCOVERY)
        time.sleep(0.2)
    raise BenchError(
        f"{base_url}{DISCOVERY} not ready after {READY_TIMEOUT_S:.0f} s:\n{log_tail(log)}"
    )


def token_path_from(discovery: dict[str, object], default: str) -> str:
    endpoint = discovery.get("token_endpoint")
    if isinstance(endpoint, str) and endpoint:
        return urllib.parse.urlsplit(endpoint).path or default
    return default


def json_object(raw: bytes | str, what: str) -> dict[str, object]:
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise BenchError(f"{what}: expected a JSON object, got {data!r}")
    return data


def b64url_json(segment: str) -> dict[str, object]:
    padded = segment + "=" * (-len(segment) % 4)
    return json_object(base64.urlsafe_b64decode(padded), "JWT segment")


def request_token(target: Target) -> str:
    """One token request; it must give 200 and a JWS access token, which is returned."""
    body = urllib.parse.urlencode({"grant_type": "client_credentials", **target.params})
    headers = {
        "Authorization": target.auth,
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
    }
    status, raw = http_request("POST", target.token_url, body, headers)
    if status != 200:
        raise BenchError(f"{target.name}: token request gave {status}: {raw[:500]!r}")
    response = json_object(raw, f"{target.name} token response")
    token = response.get("access_token")
    if not isinstance(token, str) or token.count(".") != 2:
        raise BenchError(f"{target.name}: access_token is not a JWS: {response!r}")
    if str(response.get("token_type", "")).lower() != "bearer":
        print(f"WARNING {target.name}: token_type is {response.get('token_type')!r}")
    return token


def verify_token(target: Target) -> dict[str, object]:
    """The access token must be an RFC 9068 JWT (typ at+jwt); two requests in a row show
    whether the server signs every token or hands out a cached one."""
    token = request_token(target)
    reused = request_token(target) == token
    header_seg, payload_seg, _ = token.split(".")
    header, claims = b64url_json(header_seg), b64url_json(payload_seg)
    if header.get("typ") != "at+jwt":
        raise BenchError(f"{target.name}: JWT header typ is {header.get('typ')!r}, want 'at+jwt'")
    if header.get("alg") != "RS256":
        print(f"WARNING {target.name}: alg is {header.get('alg')!r}, not RS256", file=sys.stderr)
    if claims.get("aud") not in (API, [API]):
        print(f"WARNING {target.name}: aud is {claims.get('aud')!r}, not {API}", file=sys.stderr)
    print(
        f"  {target.name}: token OK, {len(token)} bytes, header {header}, "
        f"scope {claims.get('scope')!r}, "
        + ("SAME token on a second request (cached)" if reused else "fresh token per request")
    )
    return {"header": header, "claims": claims, "token_bytes": len(token), "reused": reused}


def note_noise(name: str, share: float | None) -> None:
    if share is not None and share > NOISE_THRESHOLD:
        print(
            f"  WARNING: other processes used {share:.0%} of the CPU during {name}: "
            "its figures are not comparable",
            file=sys.stderr,
        )


def measure(
    target: Target, duration: float, warmup: float, pgid: int, comms: frozenset[str] = frozenset()
) -> LoadResult:
    """Verify the token, warm up, then measure; record other processes' CPU share (processes
    named in ``comms``, the target's database server, count as the target's)."""
    target.info["token"] = verify_token(target)
    if warmup > 0:
        run_load(target.token_url, target.auth, target.params, warmup)
    before = snapshot(pgid, comms)
    result = run_load(target.token_url, target.auth, target.params, duration)
    share = foreign_share(before, snapshot(pgid, comms))
    target.info["other_cpu_share"] = share
    print("  " + format_result(target.name, result))
    note_noise(target.name, share)
    return result


# --------------------------------------------------------------------------- peer


def run_peer(workdir: Path, duration: float, warmup: float) -> tuple[Target, LoadResult]:
    if not (REPO / "node_modules" / "oidc-provider").is_dir():
        raise BenchError("node_modules/oidc-provider is missing: run `npm ci` in the repo root")
    node = shutil.which("node")
    if node is None:
        raise BenchError("node is not installed")
    port = free_port()
    secret = secrets.token_urlsafe(32)
    env = {**os.environ, "PEER_CLIENT_ID": "bench", "PEER_CLIENT_SECRET": secret}
    cmd = [
        node,
        str(BENCH / "peer.mjs"),
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
        "--audience",
        API,
        "--scope",
        SCOPE,
    ]
    log = workdir / "peer.log"
    base_url = f"http://{HOST}:{port}"
    target = Target("peer", base_url, "bench", secret, {"resource": API, "scope": SCOPE})
    with process_group(cmd, log, env) as proc:
        discovery = wait_ready(base_url, proc, log)
        target.token_path = token_path_from(discovery, "/token")
        target.info["node"] = subprocess.run(
            [node, "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        result = measure(target, duration, warmup, proc.pid)
    return target, result


# --------------------------------------------------------------------------- idp


def idp_binary() -> str:
    """The idp command: $BENCH_IDP if set, else the repo's .venv, else PATH."""
    override = os.environ.get("BENCH_IDP")
    if override:
        return override
    for candidate in (REPO / ".venv" / "bin" / "idp", Path(sys.executable).parent / "idp"):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("idp")
    if found is None:
        raise BenchError("the idp command is not installed (.venv/bin/idp)")
    return found


def idp_env(db: str, token_reuse: bool) -> dict[str, str]:
    """The environment of every idp command. ``token_reuse`` turns on idp's opt-in reuse of
    recent client-credentials tokens (5 s); otherwise it signs every token, as the peer does."""
    env = {k: v for k, v in os.environ.items() if k not in ("IDP_DATABASE_URL", REUSE_ENV)}
    if db == "pg":
        env["IDP_DATABASE_URL"] = PG_URL
    env[REUSE_ENV] = REUSE_SECONDS if token_reuse else "0"
    return env


def idp_cli(instance: Path, env: dict[str, str], *args: str) -> str:
    cmd = [idp_binary(), "--instance", str(instance), *args]
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=120, cwd=REPO, check=False
    )
    if proc.returncode != 0:
        raise BenchError(
            f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


def idp_json(instance: Path, env: dict[str, str], *args: str) -> dict[str, object]:
    out = idp_cli(instance, env, "--json", *args)
    try:
        return json_object(out, f"`idp --json {' '.join(args)}`")
    except json.JSONDecodeError as exc:
        raise BenchError(f"`idp --json {' '.join(args)}` printed no JSON: {out!r}") from exc


def pg_available() -> bool:
    if shutil.which("pg_isready") is None:
        return False
    proc = subprocess.run(["pg_isready", "-h", HOST], capture_output=True, check=False)
    return proc.returncode == 0


def other_pg_sessions() -> list[str]:
    """Other clients connected to the test database (a test suite, say)."""
    sql = (
        "SELECT pid || ' ' || coalesce(application_name, '') || ' ' || coalesce(state, '') "
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    proc = subprocess.run(
        [*PSQL, "-Atc", sql], capture_output=True, text=True, timeout=30, check=False
    )
    if proc.returncode != 0:
        raise BenchError(f"cannot query PostgreSQL: {proc.stderr.strip()}")
    return [line for line in proc.stdout.splitlines() if line.strip()]


def wait_pg_idle(timeout: float = PG_IDLE_TIMEOUT_S) -> None:
    """Refuse to drop the schema under another client's feet."""
    deadline = time.monotonic() + timeout
    while sessions := other_pg_sessions():
        if time.monotonic() >= deadline:
            raise BenchError(
                "other clients are using database 'test' (pid app state: "
                f"{'; '.join(sessions)}); not dropping its schema under them"
            )
        time.sleep(1)


def reset_pg_schema() -> None:
    wait_pg_idle()
    proc = subprocess.run(
        [*PSQL, "-q", "-c", RESET_SCHEMA], capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise BenchError(f"resetting the PostgreSQL schema failed: {proc.stderr.strip()}")


def provision_idp(instance: Path, env: dict[str, str]) -> tuple[str, str]:
    """Initialise an instance with one API, one m2m client and its grant; return credentials."""
    idp_cli(instance, env, "init")
    idp_json(
        instance, env, "apis", "create", "--identifier", API, "--name", "bench", "--scope", SCOPE
    )
    client = idp_json(instance, env, "clients", "create", "--name", "bench", "--type", "m2m")
    client_id, client_secret = client.get("client_id"), client.get("client_secret")
    if not isinstance(client_id, str) or not isinstance(client_secret, str):
        raise BenchError(f"`clients create` gave no client_id/client_secret: {client!r}")
    idp_json(
        instance,
        env,
        "client-grants",
        "create",
        "--client-id",
        client_id,
        "--audience",
        API,
        "--scope",
        SCOPE,
    )
    return client_id, client_secret


def run_idp(
    db: str, workdir: Path, args: argparse.Namespace, token_reuse: bool, server: str = "gunicorn"
) -> tuple[Target, LoadResult]:
    env = idp_env(db, token_reuse)
    if db == "pg":
        reset_pg_schema()
    port = free_port()
    base_url = f"http://{HOST}:{port}"
    env["IDP_ISSUER"] = base_url
    instance = Path(tempfile.mkdtemp(prefix=f"instance-{db}-{server}-", dir=workdir))
    client_id, client_secret = provision_idp(instance, env)
    target = Target(f"idp-{db}", base_url, client_id, client_secret, {"audience": API})
    cmd = [
        idp_binary(),
        "--instance",
        str(instance),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
        "--server",
        server,
    ]
    log = instance.with_suffix(".log")
    with process_group(cmd, log, env) as proc:
        discovery = wait_ready(base_url, proc, log)
        target.token_path = token_path_from(discovery, "/oauth/token")
        comms = frozenset({"postgres"}) if db == "pg" else frozenset()
        result = measure(target, args.duration, args.warmup, proc.pid, comms)
    return target, result


# --------------------------------------------------------------------------- report


def ratio(num: float, den: float) -> float | None:
    return round(num / den, 3) if den else None


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def other_cpu(run: dict[str, object]) -> float | None:
    share = run.get("other_cpu_share")
    return share if isinstance(share, float) else None


def reused_tokens(run: dict[str, object]) -> bool:
    token = run.get("token")
    return isinstance(token, dict) and token.get("reused") is True


def print_table(out: Outcome, ceiling_total: float) -> None:
    print()
    print(
        f"{'target':<24} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-200':>8} {'errors':>7}"
        f" {'other CPU':>10}"
    )
    for name, r in out.results.items():
        errors = r.error_count - r.non_200
        share = other_cpu(out.runs[name])
        flags = ["INVALID: failed requests"] if r.error_count else []
        if share is not None and share > NOISE_THRESHOLD:
            flags.append("NOISY: machine busy")
        if reused_tokens(out.runs[name]):
            flags.append(f"token reuse ({REUSE_SECONDS} s, opt-in)")
        print(
            f"{name:<24} {r.rps:>9.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.non_200:>8} {errors:>7}"
            f" {'n/a' if share is None else f'{share:.0%}':>10}"
            + (f"  <-- {', '.join(flags)}" if flags else "")
        )
    print(f"{'ceiling':<24} {ceiling_total:>9.0f}   (RS256 sign/s x {os.cpu_count()} cores)")


def keep_median_rounds(out: Outcome) -> None:
    """The table shows each target's median round by req/s; the rounds' ratios to the peer
    (each round's idp against the same round's peer) are printed beside it."""
    for name, results in out.rounds.items():
        out.results[name] = sorted(results, key=lambda r: r.rps)[len(results) // 2]
    peer = out.rounds.get("peer", [])
    for name, results in out.rounds.items():
        if name.startswith("idp") and len(peer) == len(results):
            ratios = [r.rps / p.rps for r, p in zip(results, peer, strict=True) if p.rps]
            out.runs[name]["idp_over_peer_rounds"] = [round(x, 3) for x in ratios]
            text = ", ".join(f"{x:.2f}" for x in ratios)
            p99 = ", ".join(f"{r.p99_ms:.1f}" for r in results)
            print(f"{name}: idp/peer by round {text}; p99 ms by round {p99}")


def summarize(results: dict[str, LoadResult], ceiling_total: float) -> dict[str, object]:
    """Ratios and target checks for every idp run; prints them."""
    peer = results.get("peer")
    summary: dict[str, object] = {}
    print()
    for name, r in results.items():
        if not name.startswith("idp"):
            continue
        vs_peer = ratio(r.rps, peer.rps) if peer else None
        vs_ceiling = ratio(r.rps, ceiling_total)
        p99_met = r.p99_ms < P99_TARGET_MS
        peer_met = None if vs_peer is None else vs_peer >= PEER_RATIO_TARGET
        summary[name] = {
            "idp_over_peer": vs_peer,
            "idp_over_ceiling": vs_ceiling,
            "p99_under_50ms": p99_met,
            "idp_over_peer_at_least_1": peer_met,
        }
        peer_word = "no peer run" if peer_met is None else ("MET" if peer_met else "NOT MET")
        print(f"{name}: idp/peer {fmt_ratio(vs_peer)}, idp/ceiling {fmt_ratio(vs_ceiling)}")
        print(
            f"  target p99 < {P99_TARGET_MS:.0f} ms: {'MET' if p99_met else 'NOT MET'} "
            f"({r.p99_ms:.2f} ms)"
        )
        print(f"  target idp/peer >= {PEER_RATIO_TARGET:.1f}: {peer_word}")
    if peer:
        print(f"peer/ceiling {fmt_ratio(ratio(peer.rps, ceiling_total))}")
    return summary


def shout(lines: list[str]) -> None:
    bar = "!" * 78
    print(f"\n{bar}", file=sys.stderr)
    for line in lines:
        print(f"!!! {line}", file=sys.stderr)
    print(bar, file=sys.stderr)


def write_results(report: dict[str, object]) -> None:
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"\nresults written to {RESULTS_FILE.relative_to(REPO)}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["idp", "peer"], help="run only idp or only the peer")
    parser.add_argument("--db", choices=["sqlite", "pg", "both"], default="both")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per target")
    parser.add_argument("--ceiling-seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians)")
    parser.add_argument(
        "--server",
        choices=["gunicorn", "granian", "both"],
        default="both" if granian_installed() else "gunicorn",
        help="idp serve's server (--server): granian (the default) or gunicorn",
    )
    parser.add_argument(
        "--variant",
        choices=["default", "sign", "both"],
        default="both",
        help=f"idp with token reuse on ({REUSE_ENV}={REUSE_SECONDS}), signing every token "
        "(sign: idp's default), or both",
    )
    return parser.parse_args(argv)


def granian_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("granian") is not None


def planned_runs(args: argparse.Namespace) -> list[str]:
    runs = [] if args.only == "idp" else ["peer"]
    if args.only != "peer":
        dbs = ["sqlite", "pg"] if args.db == "both" else [args.db]
        suffixes = {"default": [""], "sign": ["-sign"], "both": ["", "-sign"]}[args.variant]
        servers = {"gunicorn": [""], "granian": ["-granian"], "both": ["", "-granian"]}
        runs += [f"idp-{db}{suffix}{server}" for db in dbs for suffix in suffixes
                 for server in servers[args.server]]  # fmt: skip
    return runs


def execute(name: str, workdir: Path, args: argparse.Namespace) -> tuple[Target, LoadResult]:
    if name == "peer":
        return run_peer(workdir, args.duration, args.warmup)
    server = "granian" if name.endswith("-granian") else "gunicorn"
    variant = name.removeprefix("idp-").removesuffix("-granian")
    db = variant.removesuffix("-sign")
    return run_idp(db, workdir, args, token_reuse=not variant.endswith("-sign"), server=server)


def run_one(name: str, workdir: Path, args: argparse.Namespace, out: Outcome) -> None:
    print(f"\n== {name}")
    if name.startswith("idp-pg") and not pg_available():
        print(f"  SKIPPED: PostgreSQL is not reachable (pg_isready -h {HOST} failed)")
        out.runs[name] = {"skipped": "pg_isready failed"}
        return
    try:
        target, result = execute(name, workdir, args)
    except (BenchError, RuntimeError, OSError, subprocess.SubprocessError) as exc:
        out.failures.append(f"{name}: run failed: {exc}")
        out.runs[name] = {"error": str(exc)}
        print(f"  FAILED: {exc}", file=sys.stderr)
        return
    out.rounds.setdefault(name, []).append(result)
    out.results[name] = result
    out.runs[name] = {
        **result.to_dict(),
        **target.info,
        "token_url": target.token_url,
    }
    if result.error_count:
        out.failures.append(
            f"{name}: {result.non_200} non-200 responses, "
            f"{result.error_count - result.non_200} socket errors "
            f"out of {result.requests}: statuses {result.statuses}"
        )


def measure_ceiling(seconds: float) -> tuple[float, float | None]:
    """RS256 signatures/s on one core, and other processes' CPU share meanwhile."""
    print(f"== RS256 ceiling ({seconds:.0f} s, one core)")
    before = snapshot()
    per_core = signs_per_second(seconds)
    share = foreign_share(before, snapshot())
    cores = os.cpu_count() or 1
    print(f"  {per_core:.0f} signatures/s per core, {per_core * cores:.0f} on {cores} cores")
    note_noise("the ceiling", share)
    return per_core, share


def noisy_runs(out: Outcome, ceiling_share: float | None) -> list[str]:
    shares = {name: other_cpu(run) for name, run in out.runs.items()}
    shares["ceiling"] = ceiling_share
    return [
        f"{name}: other processes used {share:.0%} of the CPU"
        for name, share in shares.items()
        if share is not None and share > NOISE_THRESHOLD
    ]


def report(
    args: argparse.Namespace, per_core: float, ceiling_share: float | None, out: Outcome
) -> dict[str, object]:
    cores = os.cpu_count() or 1
    ceiling_total = per_core * cores
    print_table(out, ceiling_total)
    summary = summarize(out.results, ceiling_total)
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": cores,
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": CONNECTIONS,
            "server_workers": WORKERS,
            "api": API,
            "idp_variants": args.variant,
        },
        "ceiling": {
            "rs256_signs_per_s_per_core": round(per_core, 1),
            "cores": cores,
            "total": round(ceiling_total, 1),
            "other_cpu_share": ceiling_share,
        },
        "runs": out.runs,
        "summary": summary,
        "failures": out.failures,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_wrk()
    per_core, ceiling_share = measure_ceiling(args.ceiling_seconds)
    out = Outcome()
    with tempfile.TemporaryDirectory(prefix="idp-bench-") as tmp:
        plan = planned_runs(args)
        for n in range(args.rounds):  # the machine drifts: every target in every round
            print(f"\n##### round {n + 1}/{args.rounds}")
            for name in plan if n % 2 == 0 else plan[::-1]:
                run_one(name, Path(tmp), args, out)
    keep_median_rounds(out)
    write_results(report(args, per_core, ceiling_share, out))
    if cached := [name for name, run in out.runs.items() if reused_tokens(run)]:
        print(
            f"\nnote: {', '.join(cached)} handed repeated requests the token issued moments before"
            f" (reuse turned on, {REUSE_SECONDS} s);\n      the -sign rows sign every token,"
            " like the peer (idp's default)."
        )
    if noisy := noisy_runs(out, ceiling_share):
        shout(["MACHINE WAS BUSY, FIGURES NOT COMPARABLE (rerun on a quiet machine):", *noisy])
    if out.failures:
        shout(["BENCHMARK RUN IS NOT VALID:", *out.failures])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
