"""The client-credentials token path in one process, without a server: cost per request.

Wall-clock requests/s moves with whatever else the machine runs; the work done per request
does not. This drives ``idp.wsgi:app`` (the app gunicorn serves) with N identical
``client_credentials`` requests (HTTP Basic, ``audience``, every token freshly signed) through
the WSGI call itself, and reports one of:

- ``--mode cpu`` (default): process CPU ms per request (still inflated on a busy machine);
- ``--mode profile``: cProfile of the N requests, the top functions (``--sort``);
- ``--mode callgrind``: run it under valgrind and report instructions (Ir) per request. Only
  the measured loop is counted (``--toggle-collect=functools_reduce``: the loop is the one
  ``functools.reduce`` call), so start-up and warm-up are left out; the figure is
  reproducible to a fraction of a per cent whatever the load.

    .venv/bin/python bench/hotpath.py --mode callgrind -n 200
    .venv/bin/python bench/hotpath.py --db postgresql+psycopg://postgres@127.0.0.1:5432/h_me

A fresh instance is made with the CLI as ``bench/run.py`` makes it (one API, one m2m client,
one client grant), SQLite unless ``--db`` names another database (its schema is used as is:
give an empty database). ``--instance DIR`` reuses one made before.
"""

from __future__ import annotations

import argparse
import base64
import functools
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
API = "https://api.bench.test"
ISSUER = "http://127.0.0.1:5999"
# The per-worker caches' lifetimes (5-30 s) are a backstop; their version stamps are still read
# on every request. Under valgrind a request takes ~50x longer, so with the default lifetimes
# the client and chain caches would reload every ~20 requests and put SQL in the per-request
# figure that a served worker pays once in thousands of tokens.
LONG_CACHES = {f"IDP_{name}_CACHE_SECONDS": "3600" for name in ("CLIENT", "KEY", "ACTIONS_CHAIN")}


def idp(instance: Path, env: dict[str, str], *args: str) -> str:
    cmd = [str(REPO / ".venv" / "bin" / "idp"), "--instance", str(instance), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout


def provision(instance: Path, env: dict[str, str]) -> None:
    """One API, one m2m client and its grant; the credentials go to ``client.json``."""
    idp(instance, env, "init")
    idp(instance, env, "--json", "apis", "create", "--identifier", API, "--name", "bench",
        "--scope", "read:things")  # fmt: skip
    client = json.loads(idp(instance, env, "--json", "clients", "create", "--name", "bench",
                            "--type", "m2m"))  # fmt: skip
    idp(instance, env, "--json", "client-grants", "create", "--client-id", client["client_id"],
        "--audience", API, "--scope", "read:things")  # fmt: skip
    (instance / "client.json").write_text(json.dumps(client))


def token_request(instance: Path) -> Callable[[], tuple[str, bytes]]:
    """A function making one token request through the WSGI app; returns (status, body)."""
    from idp.wsgi import app  # after IDP_INSTANCE is set: it builds the app at import

    client = json.loads((instance / "client.json").read_text())
    pair = ":".join(urllib.parse.quote(client[k], safe="") for k in ("client_id", "client_secret"))
    body = urllib.parse.urlencode({"grant_type": "client_credentials", "audience": API}).encode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": "/oauth/token",
        "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "5999",
        "SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)), "HTTP_HOST": "127.0.0.1:5999",
        "HTTP_AUTHORIZATION": "Basic " + base64.b64encode(pair.encode()).decode(),
        "HTTP_ACCEPT": "application/json", "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http", "wsgi.version": (1, 0), "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }  # fmt: skip
    seen: dict[str, str] = {}

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        seen["status"] = status

    def one() -> tuple[str, bytes]:
        env = dict(environ, **{"wsgi.input": io.BytesIO(body)})
        result = app(env, start_response)
        try:
            return seen["status"], b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()

    return one


def measure(instance: Path, mode: str, n: int, sort: str, top: int) -> None:
    one = token_request(instance)
    status, out = one()
    if not status.startswith("200") or b'"access_token"' not in out:
        raise SystemExit(f"token request failed: {status} {out[:300]!r}")
    for _ in range(50):  # warm: caches filled, lazy imports done
        one()
    if mode == "callgrind":
        functools.reduce(lambda _acc, _i: one(), range(n), None)  # the counted loop
    elif mode == "profile":
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(n):
            one()
        profiler.disable()
        pstats.Stats(profiler).sort_stats(sort).print_stats(top)
    else:
        start = time.process_time()
        for _ in range(n):
            one()
        print(f"{(time.process_time() - start) / n * 1000:.3f} ms CPU per request (n={n})")


def under_callgrind(argv: list[str], n: int, script: str = __file__, unit: str = "request") -> int:
    """Re-run ``script`` (this one by default) under callgrind, counting the measured loop only
    (the one ``functools.reduce`` runs); what the script prints is passed on."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", "--toggle-collect=functools_reduce",
               f"--callgrind-out-file={out}", sys.executable, script, *argv,
               "--inner"]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stdout, proc.stderr, sep="\n")
            return proc.returncode
        if proc.stdout.strip():
            print(proc.stdout.strip())
        lines = out.read_text().splitlines()
        total = int(next(ln for ln in lines if ln.startswith(("summary:", "totals:"))).split()[1])
    print(f"{total // n:,} instructions (Ir) per {unit}, n={n}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("cpu", "profile", "callgrind"), default="cpu")
    parser.add_argument("-n", type=int, default=1000, help="requests measured")
    parser.add_argument("--db", help="IDP_DATABASE_URL (default: SQLite in the instance)")
    parser.add_argument("--instance", type=Path, help="an instance this script made before")
    parser.add_argument("--sort", default="cumulative", help="cProfile sort key")
    parser.add_argument("--top", type=int, default=60)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    env = {**os.environ, "IDP_CC_TOKEN_REUSE_SECONDS": "0", "IDP_ISSUER": ISSUER, **LONG_CACHES}
    if args.db:
        env["IDP_DATABASE_URL"] = args.db
    instance = args.instance or Path(tempfile.mkdtemp(prefix="idp-hotpath-"))
    if not (instance / "client.json").exists():
        provision(instance, env)
    if args.mode == "callgrind" and not args.inner:
        rest = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--inner"]
        return under_callgrind([*rest, "--instance", str(instance)], args.n)
    os.environ.update(
        {k: env[k] for k in ("IDP_CC_TOKEN_REUSE_SECONDS", "IDP_ISSUER", *LONG_CACHES)}
    )
    os.environ["IDP_INSTANCE"] = str(instance)
    if args.db:
        os.environ["IDP_DATABASE_URL"] = args.db
    measure(instance, args.mode, args.n, args.sort, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
