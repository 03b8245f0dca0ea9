"""Client credentials with DPoP (RFC 9449): idp against oidc-provider configured the same way.

    .venv/bin/python bench/dpop.py [--duration 20] [--rounds 1] [--db sqlite|pg]

Each target (bench/peer.mjs --dpop: oidc-provider with DPoP on and no nonces, 2 cluster workers;
idp serve, 2 workers, token reuse off, DPoP on by default without nonces) is measured
twice in a round, back to back: the plain client_credentials request of bench/run.py, then the
same request with a DPoP proof (ES256). wrk's Lua cannot sign, and a proof is single use, so the
proofs are made beforehand (joserfc, a fresh jti each, iat now) and bench/token_dpop.lua sends
the next one with each request; a run that would run out of proofs shows as non-200 answers.
Both servers check every proof and record its jti (idp in its database's used_jtis table,
oidc-provider in each worker's memory: its replay check is per worker). Prints requests/s and
latency per run and the DPoP cost (rps with DPoP / without) per target; exit 1 on a non-200.
"""

from __future__ import annotations

import argparse
import base64
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
from joserfc import jws
from joserfc.jwk import ECKey
from load import (
    CONNECTIONS,
    THREADS,
    LoadResult,
    check_loopback,
    ensure_wrk,
    format_result,
    parse_result,
    run_load,
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
    idp_env,
    process_group,
    provision_idp,
    reset_pg_schema,
    token_path_from,
    wait_ready,
)

LUA = BENCH / "token_dpop.lua"
PROOFS_PER_SECOND = 3000  # more than either server answers on 2 cores
NOISE = 0.10
Pair = dict[str, tuple[LoadResult, float]]  # "plain" / "dpop": (figures, other CPU share)


def make_proofs(url: str, count: int, path: Path) -> str:
    """``count`` single-use ES256 proofs for POST ``url`` (one key); returns the key's jkt."""
    key = ECKey.generate_key("P-256")
    header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": key.as_dict(private=False)}
    now = int(time.time())
    with path.open("w") as out:
        for _ in range(count):
            claims = {"jti": secrets.token_urlsafe(12), "htm": "POST", "htu": url, "iat": now}
            out.write(jws.serialize_compact(header, json.dumps(claims).encode(), key) + "\n")
    return str(key.thumbprint())


def dpop_load(target: Target, duration: float, workdir: Path) -> LoadResult:
    check_loopback(target.token_url)
    seconds = max(1, round(duration))
    proofs = workdir / "proofs.txt"
    make_proofs(target.token_url, PROOFS_PER_SECOND * seconds, proofs)
    body = urllib.parse.urlencode({"grant_type": "client_credentials", **target.params})
    env = {**os.environ, "BENCH_BODY": body, "BENCH_AUTH": target.auth,
           "BENCH_PROOFS": str(proofs), "BENCH_LUA_DIR": str(BENCH)}  # fmt: skip
    cmd = [ensure_wrk(), f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s",
           "--latency", "-s", str(LUA), target.token_url]  # fmt: skip
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return parse_result(proc.stdout)


def check_bound(target: Target, workdir: Path) -> None:
    """One request with a proof must give a DPoP token with cnf.jkt of the proof's key."""
    proofs = workdir / "check.txt"
    jkt = make_proofs(target.token_url, 1, proofs)
    body = urllib.parse.urlencode({"grant_type": "client_credentials", **target.params})
    headers = {"Authorization": target.auth, "DPoP": proofs.read_text().strip(),
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    status, raw = http_request("POST", target.token_url, body, headers)
    answer = json.loads(raw) if status == 200 else {}
    token = str(answer.get("access_token", ""))
    claims = json.loads(_b64(token.split(".")[1])) if token.count(".") == 2 else {}
    if answer.get("token_type") != "DPoP" or claims.get("cnf") != {"jkt": jkt}:
        raise BenchError(f"{target.name}: no DPoP-bound token: {status} {raw[:300]!r}")


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def measure_pair(target: Target, args: argparse.Namespace, workdir: Path, pgid: int) -> Pair:
    """The plain request then the DPoP one, each with the share of the CPU other processes
    used meanwhile (``other``: above 10 % the figures are not comparable)."""
    check_bound(target, workdir)
    run_load(target.token_url, target.auth, target.params, args.warmup)  # warm up
    pair: Pair = {}
    for kind in ("plain", "dpop"):
        before = snapshot(pgid)
        if kind == "plain":
            result = run_load(target.token_url, target.auth, target.params, args.duration)
        else:
            result = dpop_load(target, args.duration, workdir)
        share = foreign_share(before, snapshot(pgid)) or 0.0
        pair[kind] = (result, share)
        print(f"  {format_result(f'{target.name} {kind}', result)}, other CPU {share:.0%}")
    return pair


def peer(args: argparse.Namespace, workdir: Path) -> Pair:
    node = shutil.which("node")
    if node is None:
        raise BenchError("node is not installed")
    port, secret = free_port(), secrets.token_urlsafe(32)
    env = {**os.environ, "PEER_CLIENT_ID": "bench", "PEER_CLIENT_SECRET": secret}
    cmd = [node, str(BENCH / "peer.mjs"), "--port", str(port), "--workers", str(WORKERS),
           "--audience", API, "--scope", SCOPE, "--dpop"]  # fmt: skip
    base = f"http://{HOST}:{port}"
    target = Target("peer", base, "bench", secret, {"resource": API, "scope": SCOPE})
    with process_group(cmd, workdir / "peer.log", env) as proc:
        target.token_path = token_path_from(wait_ready(base, proc, workdir / "peer.log"), "/token")
        return measure_pair(target, args, workdir, proc.pid)


def idp(args: argparse.Namespace, workdir: Path) -> Pair:
    env = idp_env(args.db, token_reuse=False)
    if args.db == "pg":
        reset_pg_schema()
    port = free_port()
    base = f"http://{HOST}:{port}"
    env["IDP_ISSUER"] = base
    instance = Path(tempfile.mkdtemp(dir=workdir, prefix="instance-"))
    client_id, client_secret = provision_idp(instance, env)
    target = Target(f"idp-{args.db}", base, client_id, client_secret, {"audience": API})
    cmd = [idp_binary(), "--instance", str(instance), "serve", "--host", HOST,
           "--port", str(port), "--workers", str(WORKERS)]  # fmt: skip
    log = workdir / "idp.log"
    with process_group(cmd, log, env) as proc:
        target.token_path = token_path_from(wait_ready(base, proc, log), "/oauth/token")
        return measure_pair(target, args, workdir, proc.pid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--db", choices=["sqlite", "pg"], default="sqlite")
    args = parser.parse_args(argv)
    runs: list[dict[str, Pair]] = []
    with tempfile.TemporaryDirectory(prefix="idp-bench-dpop-") as tmp:
        for round_no in range(args.rounds):
            print(f"round {round_no + 1}")
            runs.append({"peer": peer(args, Path(tmp)), "idp": idp(args, Path(tmp))})
    bad = 0
    print(f"\n{'target':<8} {'plain rps':>10} {'DPoP rps':>9} {'DPoP/plain':>11} "
          f"{'DPoP p50':>9} {'DPoP p99':>9} {'other CPU':>10}")  # fmt: skip
    for run in runs:
        for name, pair in run.items():
            (plain, plain_other), (dpop, dpop_other) = pair["plain"], pair["dpop"]
            bad += plain.non_200 + dpop.non_200 + plain.error_count + dpop.error_count
            noisy = "  NOISY" if max(plain_other, dpop_other) > NOISE else ""
            print(f"{name:<8} {plain.rps:>10.1f} {dpop.rps:>9.1f} "
                  f"{dpop.rps / plain.rps if plain.rps else 0:>11.2f} "
                  f"{dpop.p50_ms:>7.1f}ms {dpop.p99_ms:>7.1f}ms "
                  f"{plain_other:>4.0%}/{dpop_other:<4.0%}{noisy}")  # fmt: skip
        ratios = [
            f"{kind}: {run['idp'][kind][0].rps / run['peer'][kind][0].rps:.2f}"
            for kind in ("plain", "dpop")
            if run["peer"][kind][0].rps
        ]
        print("idp/peer " + ", ".join(ratios))
    if bad:
        print(f"INVALID: {bad} non-200 answers or socket errors", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
