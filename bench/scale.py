"""Login, client credentials and the users search on a big database against a small one.

    .venv/bin/python bench/scale.py [--users 1000000] [--clients 10000] [--rounds 5]
        [--cluster DIR | --shared-cluster] [--big-url URL] [--small-url URL] [--fresh]
        [--real-hash] [--keep-running]

Target (issue 17, "Scale"): on PostgreSQL, each operation's p50 on the big database
(``--users`` seeded users, ``--clients`` seeded clients: ``idp dev seed``) within 10 % of the
same operation on a small one (``--small-users`` 1,000 and ``--small-clients`` 20), measured in
the same run; a worker's memory at steady state after the load under 150 MB.
Reported, never asserted (exit 1 only when a request fails).

PostgreSQL: the bench's own cluster (``bench/pgcluster.py``: data in ``--cluster``, by default
``/tmp/idp-scale-pg``, kept between runs; started if it is not running and stopped at the end
unless ``--keep-running``), with ``shared_buffers`` sized to hold both databases, which are
loaded into it with ``pg_prewarm`` after the seed: the working set in PostgreSQL's buffers, as
on a production server sized for its data. ``--shared-cluster``: the machine's server on 5432
as it is configured instead.

Set-up: two PostgreSQL databases (created when missing; ``--fresh`` drops their ``public``
schema first), ``idp init`` and ``idp dev seed`` on each (a database seeded by an earlier run
is kept: the seed only adds what is missing, so a second run starts measuring at once), then
one ``idp serve --workers 2`` (granian) per database, both running. Every idp command gets
one ``IDP_SECRET_KEY`` (yours if set, else the bench's), so a kept database's signing keys and
client digests stay readable. argon2id is cheap (``time_cost`` 1, 1 MiB) for the seed and the
servers unless ``--real-hash``: the hash is the same on both databases and would hide the
difference being measured; seed and servers must agree, or each first login rehashes.

Operations, each at concurrency 1 on one connection per request (``login.py``'s client):
``login`` (GET /authorize, the password POST, the code at the token endpoint; a random seeded
user and the seeded web app ``seed000000``), ``client_credentials`` (a random seeded machine
client: on the big database nearly every request misses the per-worker client cache, on the
small one nearly none does), the same on the first 20 clients only (the cache as warm on both),
the random client with a cache miss on both (the clients' version stamp moved before each
request: what the database's size costs a miss), and ``GET /api/v2/users`` with a ``read:users``
token of ``seed000001``: an exact email (a random user), ``app_metadata.plan:enterprise``,
``app_metadata.tenant:t42``, ``identities.connection:seed-google``, ``email:james.s*`` (1,894
matches on a million, 2 on the small one) and ``email:robert.miller.14*`` (22 and 1), each
search's page the same size on both: the users the small database has for it, at most 50
(``equal_pages``). Each round runs every operation ``--per-round`` times on one server then the
other, the order alternating between rounds (the machine drifts by more than the differences
measured). Then the RSS and PSS of every process of each server, and the search statements,
captured in this process from ``idp.identity.search`` on each database, with ``EXPLAIN (ANALYZE,
BUFFERS)``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import login
from cpu import CpuSnapshot, foreign_share, group_cpu, machine_cpu, own_cpu
from login import Client, one_login
from pgcluster import DEFAULT_DATA, SETTINGS, Cluster, prewarm
from run import HOST, free_port, idp_binary, process_group, wait_ready

RATIO_TARGET = 1.10
RSS_TARGET_MB = 150
NOISE_THRESHOLD = 0.10
BENCH_SECRET = "bench-scale-secret-not-for-production-0123456789abcdef"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"
PASSWORD, CLIENT_SECRET = "seeded-user-password", "seeded-client-secret"  # idp.dev.seed's
API, WEB = "https://api.seed.idp.test", "seed000000"
REDIRECT = "https://app0.seed.idp.test/callback"
SAME_CLIENTS = 20  # client_credentials on the first 20 clients: the client cache as warm on both
login.REDIRECT = REDIRECT  # one_login's app: the seeded web app's redirect URI
SEARCHES = {
    "search email exact": None,  # a random seeded user's address
    "search app_metadata.plan": "app_metadata.plan:enterprise",
    "search app_metadata.tenant": "app_metadata.tenant:t42",
    "search connection": "identities.connection:seed-google",
    "search email prefix": "email:james.s*",
    # the same plan on both (fewer than 2,000 matches: a page from the pattern index), with
    # matches in the same few: 1 on the small database, 22 on the big one
    "search email prefix, rare": "email:robert.miller.14*",
}
MISS = "client_credentials, a cache miss on both"
# Rows that compare more than the database's size, printed with why.
NOT_LIKE_FOR_LIKE = {
    "client_credentials": "a cache miss on the big tenant (10,000 clients, each asked about "
    "once) against a hit on the small one (20): the miss's cost, not the table's; the "
    f"'{MISS}' row compares the database",
    "search email prefix": "1,894 matches on the big database against 2 on the small: the "
    "page sorts every match by created_at, a cost that follows the matches; the 'rare' row "
    "compares the database",
}


class Server:
    def __init__(self, name: str, url: str, users: int, clients: int, base: str) -> None:
        self.name, self.url, self.users, self.clients, self.base = name, url, users, clients, base
        self.token = ""
        self.pgid = 0
        self.folder = Path()  # its instance folder: the version stamps the bench moves
        self.times: dict[str, list[float]] = {}
        self.per_page: dict[str, int] = {}  # search -> page size, the same on both servers


def email(i: int) -> str:
    from idp.dev.seed import user_email

    return user_email(i)


def idp(instance: Path, env: dict[str, str], *args: str, timeout: float = 7200) -> str:
    done = subprocess.run([idp_binary(), "--instance", str(instance), *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"idp {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def prepare(
    server: Server, instance: Path, env: dict[str, str], fresh: bool, prewarm_buffers: bool
) -> None:
    dbname = urlsplit(server.url).path.lstrip("/")
    with psql_conn(server.url.rsplit("/", 1)[0] + "/postgres") as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{dbname}"')
    if exists and fresh:
        with psql_conn(server.url) as conn:
            conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    idp(instance, env, "init")
    began = time.perf_counter()
    seeded = json.loads(idp(instance, env, "--json", "dev", "seed", "--users",
                            str(server.users), "--clients", str(server.clients)))  # fmt: skip
    took = time.perf_counter() - began
    added = f"{seeded['users_added']:,} users and {seeded['clients_added']:,} clients added"
    rate = f", {seeded['rows_per_second']:,} rows/s" if seeded["rows"] else ""
    print(f"{server.name}: {seeded['users']:,} users, {seeded['clients']:,} clients "
          f"({added} in {took:.0f} s{rate})", flush=True)  # fmt: skip
    with psql_conn(server.url) as conn:
        conn.execute("VACUUM ANALYZE")  # what autovacuum would have done by now
    if prewarm_buffers:
        print(f"{server.name}: {prewarm(server.url) * 8 / 1024:,.0f} MB loaded into shared "
              "buffers (pg_prewarm)", flush=True)  # fmt: skip
    idp(instance, env, "client-grants", "create", "--client-id", "seed000001", "--audience",
        f"{server.base}/api/v2/", "--scope", "read:users")  # fmt: skip


def psql_conn(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True)


def post_token(base: str, cid: str, audience: str) -> tuple[int, str]:
    basic = base64.b64encode(f"{cid}:{CLIENT_SECRET}".encode()).decode()
    form = {"grant_type": "client_credentials", "audience": audience}
    status, _, body = Client(base).call("POST", "/oauth/token", form,
                                        {"Authorization": f"Basic {basic}"})  # fmt: skip
    return status, body


def operation(server: Server, name: str, rng: random.Random) -> None:
    if name == "login":
        user = rng.randrange(server.users)
        one_login(server.base, WEB, CLIENT_SECRET, email(user), PASSWORD)
        return
    if name.startswith("client_credentials"):
        i = rng.randrange(SAME_CLIENTS if name.endswith(" clients") else server.clients)
        i += 1 if i % 10 == 0 else 0  # one in ten is a web app
        status, body = post_token(server.base, f"seed{min(i, server.clients - 1):06d}", API)
        if status != 200:
            raise RuntimeError(f"client_credentials answered {status}: {body[:200]}")
        return
    q = SEARCHES[name] or f'email:"{email(rng.randrange(server.users))}"'
    if len(search(server, q, server.per_page.get(name, 50))) == 0:
        raise RuntimeError(f"search {q!r} found nobody")


def search(server: Server, q: str, per_page: int) -> list[Any]:
    status, _, body = Client(server.base).call(
        "GET", "/api/v2/users?" + urlencode({"q": q, "per_page": per_page}),
        headers={"Authorization": f"Bearer {server.token}"},
    )  # fmt: skip
    if status != 200:
        raise RuntimeError(f"search {q!r} answered {status}: {body[:200]}")
    return list(json.loads(body))


def equal_pages(servers: list[Server]) -> None:
    """Each search's page size: what the small database has, at most 50. A value 0.5 % of the
    users hold is 5 users of 1,000 and 5,000 of a million: with 50 a page, the big database
    would serialise 10 times the users (each with its identities) and the ratio would measure
    that, not the database's size."""
    small = servers[0]
    for name, q in SEARCHES.items():
        if q is not None:  # an exact email finds one user on both
            size = max(1, len(search(small, q, 50)))
            for server in servers:
                server.per_page[name] = size


def warm(server: Server, passes: int = 6) -> None:
    """After the miss row's last bump, the first 20 clients cached again in both workers (each
    request a new connection, spread over the workers by the kernel): else the next round's
    20-client and small-tenant rows would measure misses."""
    for _ in range(passes):
        for i in range(1, SAME_CLIENTS):
            if i % 10:  # the seeded web apps do not take client_credentials
                post_token(server.base, f"seed{min(i, server.clients - 1):06d}", API)


def snapshot(servers: list[Server]) -> CpuSnapshot:
    """CPU so far of this process, both servers' process groups and PostgreSQL."""
    busy, total = machine_cpu()
    ours = own_cpu() + group_cpu(servers[0].pgid, frozenset({"postgres"}))
    return CpuSnapshot(busy, total, ours + sum(group_cpu(s.pgid) for s in servers[1:]))


def measure(servers: list[Server], rounds: int, per_round: int) -> float | None:
    from idp.core.versions import CLIENTS, FileVersions

    same = f"client_credentials, {SAME_CLIENTS} clients"
    names = ["login", "client_credentials", same, MISS, *SEARCHES]
    rng = random.Random(17)
    before = snapshot(servers)
    for r in range(rounds):
        for name in names:
            for server in servers if r % 2 == 0 else servers[::-1]:
                for _ in range(per_round):
                    if name == MISS:
                        # what a client change does (idp.core.versions): every worker drops
                        # its cached clients, so the next request reads its client
                        FileVersions(server.folder).bump(CLIENTS)
                    start = time.perf_counter()
                    operation(server, name, rng)
                    server.times.setdefault(name, []).append((time.perf_counter() - start) * 1e3)
                if name == MISS:
                    warm(server)
        print(f"  round {r + 1}/{rounds} done", flush=True)
    return foreign_share(before, snapshot(servers))


def memory(pgid: int) -> list[tuple[int, str, float, float]]:
    """(pid, role, RSS MB, PSS MB) of every process of the server's group."""
    rows = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            pid = int(stat.parent.name)
            status = (stat.parent / "status").read_text()
            rss = int(status.split("VmRSS:")[1].split()[0]) / 1024
            rollup = (stat.parent / "smaps_rollup").read_text()
            pss = int(rollup.split("\nPss:")[1].split()[0]) / 1024
        except (OSError, IndexError, ValueError):
            continue
        rows.append((pid, "master" if pid == pgid else "worker", rss, pss))
    return sorted(rows)


def explain(server: Server) -> None:
    """The search's statements on ``server``'s database, captured from idp's own search (the
    page sizes measured), with their plans."""
    from sqlalchemy.orm import Session
    from users_search import captured

    from idp.core.db import make_engine
    from idp.identity.search import search_from_args

    engine = make_engine(server.url)
    with Session(engine) as session, psql_conn(server.url) as conn:
        for name, q in SEARCHES.items():
            per_page = str(server.per_page.get(name, 50))
            args = {"q": q or f'email:"{email(123 % server.users)}"', "per_page": per_page}
            with captured(engine) as sent:
                search_from_args(session, args)
            print(f"\n### {name}: q={args['q']} per_page={per_page}")
            for statement, params in sent:
                if not statement.lstrip().upper().startswith("SELECT"):
                    continue
                plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).fetchall()
                print("\n".join("    " + row[0] for row in plan))
    engine.dispose()


def report(servers: list[Server], other: float | None) -> None:
    small, big = servers
    noisy = " NOISY" if other is not None and other > NOISE_THRESHOLD else ""
    share = "?" if other is None else f"{other:.0%}"
    print(f"\nother CPU {share}{noisy}; p50 / p90 ms, concurrency 1")
    print(f"{'operation':40} {small.name:>18} {big.name:>18} {'big/small':>10}")
    for name, times in small.times.items():
        a, b = times, big.times[name]
        ratio = statistics.median(b) / statistics.median(a)
        flag = "met" if ratio <= RATIO_TARGET else "NOT met"
        label = f"{name} ({small.per_page[name]} a page)" if name in small.per_page else name
        print(f"{label:40} {statistics.median(a):8.2f} / {pct(a, 90):7.2f} "
              f"{statistics.median(b):8.2f} / {pct(b, 90):7.2f} {ratio:9.3f}  {flag}")  # fmt: skip
    for name, why in NOT_LIKE_FOR_LIKE.items():
        print(f"  {name}: {why}")


def pct(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--small-users", type=int, default=1_000)
    parser.add_argument("--small-clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=20)
    parser.add_argument("--cluster", type=Path, default=DEFAULT_DATA,
                        help="data directory of the bench's own tuned cluster")  # fmt: skip
    parser.add_argument("--shared-cluster", action="store_true",
                        help="the machine's PostgreSQL on 5432 instead, as configured")  # fmt: skip
    parser.add_argument("--big-url", help="default: idp_scale_big on the cluster")
    parser.add_argument("--small-url", help="default: idp_scale_small on the cluster")
    parser.add_argument("--fresh", action="store_true", help="drop both schemas first")
    parser.add_argument("--real-hash", action="store_true", help="idp's argon2id defaults")
    parser.add_argument("--no-explain", action="store_true")
    parser.add_argument("--keep-running", action="store_true",
                        help="leave the bench's cluster running at the end")  # fmt: skip
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env["IDP_SECRET_KEY"] = os.environ.get("IDP_SECRET_KEY") or BENCH_SECRET
    if not args.real_hash:
        env.update(IDP_ARGON2_TIME_COST="1", IDP_ARGON2_MEMORY_KIB="1024")
    # The client cache's 5 s backstop: on PostgreSQL without Redis the version stamps (files,
    # which the "cache miss" row moves) do not vouch for a cached client, so at this bench's
    # pace (each of the 20 clients asked about once a round) every entry would expire between
    # two requests and the "20 clients" row would measure misses on both. An hour on both, as
    # with Redis a client stays cached while unchanged (CLIENT_CACHE_MAX_SECONDS).
    env["IDP_CLIENT_CACHE_SECONDS"] = "3600"
    os.environ.update({k: v for k, v in env.items() if k.startswith("IDP_ARGON2")})
    cluster = None if args.shared_cluster else Cluster(args.cluster)
    started = cluster.start() if cluster else False
    url = cluster.url if cluster else lambda dbname: PG + dbname
    if cluster:
        tuned = ", ".join(f"{k} {SETTINGS[k]}" for k in ("shared_buffers", "effective_cache_size"))
        print(f"PostgreSQL: the bench's cluster in {cluster.data}, port {cluster.port} ({tuned})")
    servers = [
        Server("small", args.small_url or url("idp_scale_small"), args.small_users,
               args.small_clients, f"http://{HOST}:{free_port()}"),
        Server("big", args.big_url or url("idp_scale_big"), args.users, args.clients,
               f"http://{HOST}:{free_port()}"),
    ]  # fmt: skip
    try:
        with tempfile.TemporaryDirectory(prefix="idp-scale-bench-") as tmp:
            for server in servers:
                folder = Path(tmp) / server.name
                server_env = {**env, "IDP_DATABASE_URL": server.url, "IDP_ISSUER": server.base}
                prepare(server, folder, server_env, args.fresh, cluster is not None)
            return serve_and_measure(servers, Path(tmp), env, args)
    finally:
        if cluster and started and not args.keep_running:
            cluster.stop()


def serve_and_measure(
    servers: list[Server], tmp: Path, env: dict[str, str], args: argparse.Namespace
) -> int:
    from contextlib import ExitStack

    with ExitStack() as stack:
        for server in servers:
            folder, log = tmp / server.name, tmp / f"{server.name}.log"
            port = str(urlsplit(server.base).port)
            server_env = {**env, "IDP_DATABASE_URL": server.url, "IDP_ISSUER": server.base}
            cmd = [idp_binary(), "--instance", str(folder), "serve", "--host", HOST,
                   "--port", port, "--workers", "2"]  # fmt: skip
            proc = stack.enter_context(process_group(cmd, log, server_env))
            wait_ready(server.base, proc, log)
            server.pgid = proc.pid
            server.folder = folder
            status, body = post_token(server.base, "seed000001", f"{server.base}/api/v2/")
            if status != 200:
                raise SystemExit(f"{server.name}: no management token ({status}): {body}")
            server.token = json.loads(body)["access_token"]
        equal_pages(servers)
        measure(servers, 1, 3)  # warm up both (and check every operation answers)
        for server in servers:
            server.times.clear()
        other = measure(servers, args.rounds, args.per_round)
        report(servers, other)
        print(f"\nmemory after the load (target: a worker under {RSS_TARGET_MB} MB RSS)")
        for server in servers:
            for pid, role, rss, pss in memory(server.pgid):
                flag = "" if role == "master" or rss < RSS_TARGET_MB else "  OVER"
                print(f"  {server.name:6} {role:7} pid {pid:7}  RSS {rss:6.1f} MB  "
                      f"PSS {pss:6.1f} MB{flag}")  # fmt: skip
    for server in [] if args.no_explain else servers:
        print(f"\nquery plans on the {server.name} database ({server.users:,} users)")
        explain(server)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
