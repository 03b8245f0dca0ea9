"""What a client-cache miss costs in-process: ``ClientDirectory._load`` over random seeded clients.

    .venv/bin/python bench/client_miss.py [--url URL] [--clients 10000] [-n 1000]
        [--mode cpu|callgrind|profile] [--token random|fixed]

``--token``: whole client-credentials requests through the WSGI app instead (no server, no
socket), each from a random seeded machine client (a miss each) or from ``seed000001`` only
(hits), wall time too: what a miss adds to a token with its round trips.

The database is one ``bench/scale.py`` seeded (by default ``idp_scale_big`` on the bench's
cluster, ``bench/pgcluster.py start`` first). ``cpu``: CPU µs per miss, best of 5 rounds, and
statements per miss; ``callgrind``: instructions per miss under valgrind, only the measured
loop counted (``--toggle-collect=functools_reduce``, as ``hotpath.py`` does), the same however
busy the machine is; ``profile``: cProfile on CPU time.
"""

from __future__ import annotations

import argparse
import base64
import functools
import random
import sys
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

SECRET = "bench-scale-secret-not-for-production-0123456789abcdef"  # scale.py's BENCH_SECRET
URL = "postgresql+psycopg://postgres@127.0.0.1:55432/idp_scale_big"
API, CLIENT_SECRET = "https://api.seed.idp.test", "seeded-client-secret"  # idp.dev.seed's


def token_request(app: Any) -> Callable[[str], Any]:
    """One client-credentials token for a seeded client through the WSGI app."""
    body = urlencode({"grant_type": "client_credentials", "audience": API}).encode()
    environ = {
        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": "/oauth/token",
        "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "1",
        "SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)), "HTTP_HOST": "127.0.0.1:1",
        "HTTP_ACCEPT": "application/json", "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http", "wsgi.version": (1, 0), "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }  # fmt: skip
    status: list[str] = []

    def call(client_id: str) -> Any:
        basic = base64.b64encode(f"{client_id}:{CLIENT_SECRET}".encode()).decode()
        env = dict(environ, HTTP_AUTHORIZATION=f"Basic {basic}", **{"wsgi.input": BytesIO(body)})
        result = app(env, lambda given, _headers, _exc=None: status.append(given))
        out = b"".join(result)
        getattr(result, "close", lambda: None)()
        if not status.pop().startswith("200"):
            raise SystemExit(f"token for {client_id} refused: {out[:200]!r}")

    return call


def measure(url: str, clients: int, n: int, mode: str, token: str | None) -> None:
    from sqlalchemy import event

    from idp import create_app
    from idp.extensions import db

    config = {"SECRET_KEY": SECRET, "DATABASE_URL": url, "ISSUER": "http://127.0.0.1:1"}
    app = create_app(config, tempfile.mkdtemp(prefix="idp-client-miss-"))
    rng = random.Random(1)
    # one in ten seeded clients is a web app (idp.dev.seed): the token takes the next one
    ids = [f"seed{min(i + (i % 10 == 0), clients - 1):06d}"
           for i in (rng.randrange(clients) for _ in range(n))]  # fmt: skip
    if token == "fixed":
        ids = ["seed000001"] * n
    with app.app_context():
        directory, session = app.extensions["idp.services"].clients, db.session
        load = token_request(app) if token else functools.partial(directory._load, session)
        for client_id in ids[:30]:  # warm: psycopg prepares the statement after 5 runs
            if load(client_id) is None and not token:
                raise SystemExit(f"no client {client_id}: seed with bench/scale.py first")
        sent = [0]
        event.listen(
            db.engine, "before_cursor_execute", lambda *_: sent.__setitem__(0, sent[0] + 1)
        )
        directory._cache.clear()
        if mode == "callgrind":
            functools.reduce(lambda _acc, cid: load(cid), ids, None)
            print(f"statements per miss: {sent[0] / n:.2f}")
        elif mode == "profile":
            import cProfile
            import pstats

            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            for client_id in ids:
                load(client_id)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        else:
            best, wall = float("inf"), float("inf")
            for _ in range(5):
                directory._cache.clear()  # each round's clients missed again (tokens)
                start, began = time.process_time(), time.perf_counter()
                for client_id in ids:
                    load(client_id)
                best = min(best, (time.process_time() - start) / n)
                wall = min(wall, (time.perf_counter() - began) / n)
            what = f"token ({token} client)" if token else "miss"
            print(f"{best * 1e6:.1f} µs CPU, {wall * 1e6:.1f} µs wall per {what} (best of 5 x "
                  f"{n}), {sent[0] / (5 * n):.2f} statements per {what}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=URL)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--mode", choices=("cpu", "callgrind", "profile"), default="cpu")
    parser.add_argument("--token", choices=("random", "fixed"))
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode == "callgrind" and not args.inner:
        from hotpath import under_callgrind

        given = sys.argv[1:] if argv is None else argv
        return under_callgrind(given, args.n, script=__file__, unit="miss")
    measure(args.url, args.clients, args.n, args.mode, args.token)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
