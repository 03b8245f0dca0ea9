"""Client credentials with private_key_jwt (RFC 7523, OIDC Core §9): idp against oidc-provider
configured the same way.

    .venv/bin/python bench/pkj.py [--duration 10] [--rounds 2] [--db sqlite|pg]

Each target (bench/peer.mjs with PEER_CLIENT_JWKS: oidc-provider's client registered for
private_key_jwt with an RS256 key by value, 2 cluster workers; idp serve, 2 workers,
token reuse off, its m2m client created with `idp clients create --auth-method private_key_jwt
--jwks-file`) answers the client_credentials request of bench/run.py authenticated by a client
assertion instead of HTTP Basic. wrk's Lua cannot sign and an assertion's jti is single use, so
the assertions are signed beforehand (joserfc, RS256, a fresh jti each, exp 4 minutes ahead, aud
the token endpoint) and bench/token_pkj.lua sends the next one with each request; a run that
would run out shows as non-200 answers. Both servers verify every signature and record every jti
(idp in its database's used_jtis table, shared by its workers; oidc-provider in each worker's
memory). Rounds alternate peer and idp; each prints requests/s, latency, other processes' CPU
share and the round's idp/peer ratio. Exit 1 on a non-200.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from cpu import foreign_share, snapshot
from joserfc import jwt
from joserfc.jwk import RSAKey
from load import (
    CONNECTIONS,
    THREADS,
    LoadResult,
    check_loopback,
    ensure_wrk,
    format_result,
    parse_result,
)
from run import (
    API,
    BENCH,
    HOST,
    SCOPE,
    WORKERS,
    BenchError,
    Target,
    free_port,
    http_request,
    idp_binary,
    idp_cli,
    idp_env,
    idp_json,
    process_group,
    reset_pg_schema,
    token_path_from,
    wait_ready,
)

LUA = BENCH / "token_pkj.lua"
ASSERTIONS_PER_SECOND = 4000  # more than either answers on 2 cores (the peer: ~2,500 quiet)
NOISE = 0.10
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def make_assertions(key: RSAKey, client_id: str, aud: str, count: int, path: Path) -> None:
    now = int(time.time())
    header = {"alg": "RS256", "kid": key.kid}
    with path.open("w") as out:
        for _ in range(count):
            claims = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now,
                      "exp": now + 240, "jti": secrets.token_urlsafe(12)}  # fmt: skip
            out.write(jwt.encode(header, claims, key) + "\n")


def check(target: Target, key: RSAKey, workdir: Path) -> None:
    """One request must give a 200 with an at+jwt access token."""
    path = workdir / "check.txt"
    make_assertions(key, target.client_id, target.token_url, 1, path)
    body = urllib.parse.urlencode({"grant_type": "client_credentials", **target.params,
                                   "client_assertion_type": ASSERTION_TYPE,
                                   "client_assertion": path.read_text().strip()})  # fmt: skip
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, raw = http_request("POST", target.token_url, body, headers)
    if status != 200 or "access_token" not in json.loads(raw):
        raise BenchError(f"{target.name}: private_key_jwt refused: {status} {raw[:300]!r}")


def load(target: Target, key: RSAKey, seconds: int, workdir: Path) -> LoadResult:
    check_loopback(target.token_url)
    path = workdir / f"assertions-{target.name}.txt"
    make_assertions(key, target.client_id, target.token_url, ASSERTIONS_PER_SECOND * seconds, path)
    body = urllib.parse.urlencode({"grant_type": "client_credentials", **target.params})
    env = {**os.environ, "BENCH_BODY": body, "BENCH_AUTH": "", "BENCH_ASSERTIONS": str(path),
           "BENCH_LUA_DIR": str(BENCH)}  # fmt: skip
    cmd = [ensure_wrk(), f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s",
           "--latency", "-s", str(LUA), target.token_url]  # fmt: skip
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return parse_result(proc.stdout)


def measure(target: Target, key: RSAKey, args: argparse.Namespace, workdir: Path,
            pgid: int) -> tuple[LoadResult, float]:  # fmt: skip
    check(target, key, workdir)
    load(target, key, max(1, round(args.warmup)), workdir)  # warm up
    before = snapshot(pgid)
    result = load(target, key, max(1, round(args.duration)), workdir)
    share = foreign_share(before, snapshot(pgid)) or 0.0
    print(f"  {format_result(target.name, result)}, other CPU {share:.0%}")
    return result, share


def peer(args: argparse.Namespace, key: RSAKey, workdir: Path) -> tuple[LoadResult, float]:
    node = shutil.which("node")
    if node is None:
        raise BenchError("node is not installed")
    port = free_port()
    jwks = json.dumps({"keys": [key.as_dict(private=False)]})
    env = {**os.environ, "PEER_CLIENT_ID": "bench", "PEER_CLIENT_JWKS": jwks}
    cmd = [node, str(BENCH / "peer.mjs"), "--port", str(port), "--workers", str(WORKERS),
           "--audience", API, "--scope", SCOPE]  # fmt: skip
    base = f"http://{HOST}:{port}"
    target = Target("peer", base, "bench", "", {"resource": API, "scope": SCOPE})
    with process_group(cmd, workdir / "peer.log", env) as proc:
        target.token_path = token_path_from(wait_ready(base, proc, workdir / "peer.log"), "/token")
        return measure(target, key, args, workdir, proc.pid)


def idp(args: argparse.Namespace, key: RSAKey, workdir: Path) -> tuple[LoadResult, float]:
    env = idp_env(args.db, token_reuse=False)
    if args.db == "pg":
        reset_pg_schema()
    port = free_port()
    base = f"http://{HOST}:{port}"
    env["IDP_ISSUER"] = base
    instance = Path(tempfile.mkdtemp(dir=workdir, prefix="instance-"))
    jwks_file = workdir / "client-jwks.json"
    jwks_file.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    idp_cli(instance, env, "init")
    idp_json(instance, env, "apis", "create", "--identifier", API, "--name", "bench",
             "--scope", SCOPE)  # fmt: skip
    client = idp_json(instance, env, "clients", "create", "--name", "bench", "--type", "m2m",
                      "--auth-method", "private_key_jwt",
                      "--jwks-file", str(jwks_file))  # fmt: skip
    client_id = str(client["client_id"])
    idp_json(instance, env, "client-grants", "create", "--client-id", client_id,
             "--audience", API, "--scope", SCOPE)  # fmt: skip
    target = Target(f"idp-{args.db}", base, client_id, "", {"audience": API})
    cmd = [idp_binary(), "--instance", str(instance), "serve", "--host", HOST,
           "--port", str(port), "--workers", str(WORKERS)]  # fmt: skip
    log = workdir / "idp.log"
    with process_group(cmd, log, env) as proc:
        target.token_path = token_path_from(wait_ready(base, proc, log), "/oauth/token")
        return measure(target, key, args, workdir, proc.pid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--db", choices=["sqlite", "pg"], default="sqlite")
    args = parser.parse_args(argv)
    key = RSAKey.generate_key(2048, parameters={"kid": "bench-client"})
    rows: list[tuple[int, str, LoadResult, float]] = []
    with tempfile.TemporaryDirectory(prefix="idp-bench-pkj-") as tmp:
        for round_no in range(args.rounds):
            print(f"round {round_no + 1}")
            first, second = (peer, idp) if round_no % 2 == 0 else (idp, peer)
            for run in (first, second):
                result, share = run(args, key, Path(tmp))
                rows.append((round_no, "peer" if run is peer else "idp", result, share))
    bad = 0
    print(f"\n{'round':<6} {'target':<6} {'rps':>8} {'p50':>9} {'p99':>9} {'other CPU':>10}")
    for round_no, name, result, share in rows:
        bad += result.non_200 + result.error_count
        noisy = "  NOISY" if share > NOISE else ""
        print(f"{round_no + 1:<6} {name:<6} {result.rps:>8.1f} {result.p50_ms:>7.1f}ms "
              f"{result.p99_ms:>7.1f}ms {share:>9.0%}{noisy}")  # fmt: skip
    for round_no in range(args.rounds):
        got = {name: r.rps for n, name, r, _ in rows if n == round_no}
        if got.get("peer"):
            print(f"round {round_no + 1}: idp/peer {got['idp'] / got['peer']:.2f}")
    if bad:
        print(f"INVALID: {bad} non-200 answers or socket errors", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
