"""What a client-cache miss costs in-process: ``ClientDirectory._load`` over random seeded clients.

    .venv/bin/python bench/client_miss.py [--url URL] [--clients 10000] [-n 1000]
        [--mode cpu|callgrind|profile]

The database is one ``bench/scale.py`` seeded (by default ``idp_scale_big`` on the bench's
cluster, ``bench/pgcluster.py start`` first). ``cpu``: CPU µs per miss, best of 5 rounds, and
statements per miss; ``callgrind``: instructions per miss under valgrind, only the measured
loop counted (``--toggle-collect=functools_reduce``, as ``hotpath.py`` does), the same however
busy the machine is; ``profile``: cProfile on CPU time.
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
import tempfile
import time
from pathlib import Path

SECRET = "bench-scale-secret-not-for-production-0123456789abcdef"  # scale.py's BENCH_SECRET
URL = "postgresql+psycopg://postgres@127.0.0.1:55432/idp_scale_big"


def measure(url: str, clients: int, n: int, mode: str) -> None:
    from sqlalchemy import event

    from idp import create_app
    from idp.extensions import db

    config = {"SECRET_KEY": SECRET, "DATABASE_URL": url, "ISSUER": "http://127.0.0.1:1"}
    app = create_app(config, tempfile.mkdtemp(prefix="idp-client-miss-"))
    rng = random.Random(1)
    ids = [f"seed{rng.randrange(clients):06d}" for _ in range(n)]
    with app.app_context():
        directory, session = app.extensions["idp.services"].clients, db.session
        for client_id in ids[:30]:  # warm: psycopg prepares the statement after 5 runs
            if directory._load(session, client_id) is None:
                raise SystemExit(f"no client {client_id}: seed with bench/scale.py first")
        sent = [0]
        event.listen(
            db.engine, "before_cursor_execute", lambda *_: sent.__setitem__(0, sent[0] + 1)
        )
        if mode == "callgrind":
            functools.reduce(lambda _acc, cid: directory._load(session, cid), ids, None)
            print(f"statements per miss: {sent[0] / n:.2f}")
        elif mode == "profile":
            import cProfile
            import pstats

            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            for client_id in ids:
                directory._load(session, client_id)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        else:
            best = float("inf")
            for _ in range(5):
                start = time.process_time()
                for client_id in ids:
                    directory._load(session, client_id)
                best = min(best, (time.process_time() - start) / n)
            print(f"{best * 1e6:.1f} µs CPU per miss (best of 5 x {n}), "
                  f"{sent[0] / (5 * n):.2f} statements per miss")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=URL)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--mode", choices=("cpu", "callgrind", "profile"), default="cpu")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode == "callgrind" and not args.inner:
        from hotpath import under_callgrind

        given = sys.argv[1:] if argv is None else argv
        return under_callgrind(given, args.n, script=__file__, unit="miss")
    measure(args.url, args.clients, args.n, args.mode)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
