"""Benchmark a social login's overhead in idp, the upstream's time excluded (issue 12).

    .venv/bin/python bench/social.py [--logins 400] [--warmup 5] [--trace]

idp is served like bench/login.py serves it (gunicorn, 2 sync workers, SQLite in a temporary
instance made with the CLI, production defaults: client cache on), with
``CONNECTIONS_ALLOW_NETWORKS=127.0.0.0/8`` so it may reach the upstream: the real npm
``oidc-provider`` of the tests (``tests/connections/upstream.py``), behind an ``oidc``
connection enabled for a first-party app. gunicorn loads the app through
:func:`instrumented` below (bench only; idp's code is unchanged): it wraps
``idp.core.http.fetch`` (every upstream call) and argon2id verification in timers, counts
SQL statements (sqlite3's trace) and reports, per request, in an ``X-Bench`` response header,
the time that request spent waiting on the upstream, the time it spent hashing, its upstream
calls and its SQL statements. ``--trace`` then shows one login of each kind request by
request with its statements (values left out).

One login of each kind per round, the kinds in turn (the machine drifts by more than the
overhead within a minute, so the kinds are interleaved rather than run in phases):

- ``password``: GET /authorize (the login page), POST the form (argon2id) -> 303 to the app;
- ``social, repeat``: GET /authorize (the page), POST the "Continue with" button -> 303 to
  the upstream, the upstream's own pages (``OidcUpstream.login``: not idp's time, not timed),
  GET /login/callback/NAME -> 303 to the app; the user exists (the common case);
- ``social, connection=``: the same with ``connection=NAME`` at /authorize (no page, no
  button: straight to the upstream);
- ``social, first login``: the button path for an upstream account idp has never seen (the
  callback creates the user and the identity).

idp's overhead for one login = the wall time of idp's requests in it, measured by this client,
minus the time idp spent inside those requests waiting on the upstream (token, userinfo, and
discovery or JWKS when its cache fetches them) and, for the password login, minus the argon2id
verification: both as measured inside idp's worker. So each kind's figure is the same thing,
idp's own work from /authorize to the code at the app, and the password login (bench/login.py's
flow without the hash) is the like-for-like reference: the ratio social/password says how much
dearer a social login is than idp's plainest login. The token request at the app is left out
of both (it is the same request whatever the login).

Target (issue 12): the p50 of a repeat social login's overhead under 20 ms. Reported, never
asserted: the exit status is 1 only when a login failed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

TARGET_MS = 20.0
NOISE_THRESHOLD = 0.10
HEADER = "X-Bench"
APP = "social:instrumented()"  # what gunicorn serves (bench/ is on its path)
_LITERAL = re.compile(r"'(?:[^']|'')*'")  # --trace prints no values (hashes, kept verifiers)
CONNECTION = "upstream"
PASSWORD = "bench-password-0123456789"
REDIRECT = "http://127.0.0.1:9/cb"
PASSWORD_USER = "bench@example.test"
REPEAT_LOGIN = "verified-repeat@upstream.test"  # verified- : the upstream says email_verified

# ----------------------------------------------------------------- inside idp's gunicorn worker

_request = threading.local()


def _add(key: str, value: float) -> None:
    acc = getattr(_request, "acc", None)
    if acc is not None:
        acc[key] = acc.get(key, 0.0) + value


def _timed(real: Callable[..., Any], key: str, label: Callable[..., str] | None) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return real(*args, **kwargs)
        finally:
            _add(key + "_ms", (time.perf_counter() - start) * 1000)
            _add(key + "_cpu_ms", (time.thread_time() - cpu) * 1000)
            _add(key + "_calls", 1)
            if label is not None and getattr(_request, "calls", None) is not None:
                _request.calls.append(label(*args, **kwargs))

    wrapper.__wrapped__ = real  # type: ignore[attr-defined]
    return wrapper


def instrumented() -> Callable[..., Iterable[bytes]]:
    """gunicorn's app factory (``social:instrumented()``): idp's WSGI app with the bench's
    per-request accounting. Every module that imported ``idp.core.http.fetch`` by name gets the
    timed one too (``idp.connections.upstream.transport`` does)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def statement(sql: str) -> None:
        _add("sql", 1)
        if getattr(_request, "sql", None) is not None:
            _request.sql.append(" ".join(_LITERAL.sub("?", sql).split())[:110])

    # sqlite3's trace sees every statement, the ORM's and idp.core.fastsql's raw DBAPI ones
    # alike (SQLAlchemy's cursor events miss the latter). Before the app makes its engine.
    @event.listens_for(Engine, "connect")
    def trace(dbapi_connection: Any, _record: Any) -> None:
        if hasattr(dbapi_connection, "set_trace_callback"):
            dbapi_connection.set_trace_callback(statement)

    import idp.core.http as core_http
    from idp.identity.service import Passwords
    from idp.wsgi import app

    real_fetch = core_http.fetch
    timed_fetch = _timed(real_fetch, "upstream", lambda method, url, **_: urlsplit(url).path)
    for module in list(sys.modules.values()):
        if module is core_http or getattr(module, "fetch", None) is real_fetch:
            setattr(module, "fetch", timed_fetch)  # noqa: B010 - mypy: no such attribute
    Passwords.verify = _timed(Passwords.verify, "argon2", None)  # type: ignore[method-assign]

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Run the request, then answer with its figures in the X-Bench header (so the
        response is held until the app is done: fine for idp's buffered responses)."""
        _request.acc, _request.calls = {}, []
        _request.sql = [] if environ.get("HTTP_X_BENCH_TRACE") else None
        began, cpu = time.perf_counter(), time.thread_time()
        captured: list[Any] = []
        body: list[bytes] = []

        def hold(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
            captured[:] = [status, headers, exc]
            return body.append  # WSGI's write(): kept in order with the body

        try:
            answer = app(environ, hold)
            try:
                body.extend(answer)
            finally:
                if hasattr(answer, "close"):
                    answer.close()
        finally:
            report = {**_request.acc, "app_ms": (time.perf_counter() - began) * 1000,
                      "cpu_ms": (time.thread_time() - cpu) * 1000,
                      "paths": _request.calls, "statements": _request.sql}  # fmt: skip
            _request.acc, _request.calls, _request.sql = None, None, None
        status, headers, exc = captured
        start_response(status, [*headers, (HEADER, json.dumps(report))], exc)
        return body

    return middleware


# ----------------------------------------------------------------- the client side


@dataclass
class Sample:
    """One login: the wall time of idp's requests and what idp's worker reported for them."""

    wall_ms: float = 0.0
    requests: int = 0
    round: int = -1
    report: dict[str, float] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    trace: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)

    def add(self, request: str, wall_ms: float, header: str | None, keep: bool) -> None:
        self.wall_ms += wall_ms
        self.requests += 1
        data = json.loads(header or "{}")
        if keep:
            self.trace.append((request, wall_ms, dict(data)))
        self.paths += data.pop("paths", [])
        data.pop("statements", None)
        for key, value in data.items():
            self.report[key] = self.report.get(key, 0.0) + value

    @property
    def upstream_ms(self) -> float:
        return self.report.get("upstream_ms", 0.0)

    @property
    def excluded_ms(self) -> float:
        return self.upstream_ms + self.report.get("argon2_ms", 0.0)

    @property
    def overhead_ms(self) -> float:
        """Wall time of idp's requests minus the upstream wait and the hash."""
        return self.wall_ms - self.excluded_ms

    @property
    def cpu_overhead_ms(self) -> float:
        """The worker thread's CPU time in idp's requests, minus the CPU spent inside the
        upstream calls and argon2id: what a login costs idp with no queueing behind other
        processes (a loaded machine inflates wall time far more than CPU time)."""
        report = self.report
        inside = report.get("upstream_cpu_ms", 0.0) + report.get("argon2_cpu_ms", 0.0)
        return report.get("cpu_ms", 0.0) - inside

    @property
    def app_overhead_ms(self) -> float:
        """The same inside the WSGI app: no HTTP parsing, loopback or client."""
        return self.report.get("app_ms", 0.0) - self.excluded_ms


class Browser:
    """A cookie-keeping browser at idp (bench/login.py's minimal client: ``requests`` would
    add client CPU to the wall time); each request's wall time goes to ``sample``."""

    def __init__(self, base: str, client_id: str, trace: bool = False) -> None:
        from login import Client

        self.base = base
        self.http = Client(base)
        self.client_id = client_id
        self.sample = Sample()
        self.trace = trace

    def call(
        self, method: str, path: str, body: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        sent = {"X-Bench-Trace": "1"} if self.trace else None
        start = time.perf_counter()
        status, headers, text = self.http.call(method, path, body, sent)
        wall = (time.perf_counter() - start) * 1000
        label = f"{method} {path.split('?')[0]}"
        self.sample.add(label, wall, headers.get(HEADER.lower()), self.trace)
        return status, headers.get("location", ""), text

    def follow(self, status: int, location: str, text: str) -> tuple[int, str, str]:
        """Follow idp's own redirects; stop at one that leaves idp, or at a page."""
        for _ in range(10):
            if status not in (302, 303) or not (
                location.startswith("/") or location.startswith(self.base)
            ):
                return status, location, text
            status, location, text = self.call("GET", location.removeprefix(self.base))
        raise RuntimeError("redirect loop at idp")

    def authorize(self, **extra: str) -> tuple[int, str, str]:
        params = {
            "response_type": "code", "client_id": self.client_id, "redirect_uri": REDIRECT,
            "scope": "openid", "state": "s", "nonce": secrets.token_urlsafe(8),
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256", **extra,
        }  # fmt: skip
        return self.follow(*self.call("GET", "/authorize?" + urlencode(params)))

    def press(self, page: str, name: str) -> tuple[int, str, str]:
        form = re.search(
            rf'<form method="post" action="(/interaction/[^/"]+/connection/{name})">'
            r'\s*<input type="hidden" name="csrf_token" value="([^"]+)"',
            page,
        )
        if form is None:
            raise RuntimeError(f"no button for {name} on the login page")
        return self.follow(*self.call("POST", form.group(1), {"csrf_token": form.group(2)}))

    def password(self, page: str, email: str) -> tuple[int, str, str]:
        action = re.search(r'<form method="post" action="(/interaction/[^/"]+/login)"', page)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        if action is None or token is None:
            raise RuntimeError("no login form on the login page")
        form = {"csrf_token": token.group(1), "email": email, "password": PASSWORD}
        return self.follow(*self.call("POST", action.group(1), form))

    def at_app(self, status: int, location: str) -> None:
        if status not in (302, 303) or not location.startswith(REDIRECT):
            raise RuntimeError(f"did not reach the app: {status} {location[:200]}")
        query = parse_qs(urlsplit(location).query)
        if "code" not in query:
            raise RuntimeError(f"the app got no code: {location[:300]}")


def password_login(
    base: str, client_id: str, upstream: Any, email: str, trace: bool = False
) -> Sample:
    browser = Browser(base, client_id, trace)
    status, _, page = browser.authorize()
    if status != 200:
        raise RuntimeError(f"/authorize answered {status}")
    status, location, _ = browser.password(page, email)
    browser.at_app(status, location)
    return browser.sample


def social_login(
    base: str, client_id: str, upstream: Any, login: str, direct: bool, trace: bool = False
) -> Sample:
    browser = Browser(base, client_id, trace)
    if direct:
        status, location, _ = browser.authorize(connection=CONNECTION)
    else:
        status, _, page = browser.authorize()
        if status != 200:
            raise RuntimeError(f"/authorize answered {status}")
        status, location, _ = browser.press(page, CONNECTION)
    if status != 303 or not location.startswith(upstream.issuer):
        raise RuntimeError(f"not sent to the upstream: {status} {location[:200]}")
    params = upstream.login(location, login)  # the upstream's pages: not timed
    status, location, _ = browser.follow(
        *browser.call("GET", f"/login/callback/{CONNECTION}?" + urlencode(params))
    )
    browser.at_app(status, location)
    return browser.sample


@dataclass
class Kind:
    label: str
    run: Callable[[], Sample]
    samples: list[Sample] = field(default_factory=list)

    def values(self, key: Callable[[Sample], float]) -> list[float]:
        return [key(s) for s in self.samples]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


# ----------------------------------------------------------------- set-up


def proc_cpu(pid: int) -> float:
    """CPU seconds of one process (the upstream), 0 once it is gone."""
    from cpu import CLK_TCK

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def instance_with_connection(
    tmp: Path, base: str, upstream: Any
) -> tuple[Path, dict[str, str], str]:
    """A fresh instance: a first-party app with the database and the ``oidc`` connection to
    the upstream enabled, a password user."""
    from run import idp_cli, idp_json

    instance = tmp / "instance"
    env = {**os.environ, "IDP_ISSUER": base, "IDP_INSTANCE": str(instance),
           "IDP_CONNECTIONS_ALLOW_NETWORKS": "127.0.0.0/8"}  # fmt: skip
    env.pop("IDP_DATABASE_URL", None)
    idp_cli(instance, env, "init")
    app = idp_json(instance, env, "clients", "create", "--name", "bench", "--type",
                   "regular_web", "--redirect-uri", REDIRECT)  # fmt: skip
    client_id = str(app["client_id"])
    idp_cli(instance, env, "users", "create", "--email", PASSWORD_USER, "--password", PASSWORD)
    options = upstream.options()  # client_secret_basic
    idp_json(instance, env, "connections", "create", "--strategy", "oidc", "--name", CONNECTION,
             "--issuer", options["issuer"], "--client-id", options["client_id"],
             "--client-secret", options["client_secret"],
             "--token-auth-method", options["token_endpoint_auth_method"],
             "--scope", "openid", "--scope", "profile", "--scope", "email",
             "--display-name", "Upstream", "--enable-for", client_id)  # fmt: skip
    return instance, env, client_id


def cpu_now(server_pid: int, upstream_pid: int) -> Any:
    """A CPU snapshot counting idp's workers, the upstream and this process as ours."""
    from dataclasses import replace

    from cpu import snapshot

    taken = snapshot(server_pid)
    return replace(taken, ours=taken.ours + proc_cpu(upstream_pid))


def measure(kinds: list[Kind], logins: int, warmup: int) -> list[str]:
    """``warmup`` untimed logins of each kind, then ``logins`` rounds of one login of each
    kind, the order rotating from round to round. Returns the failures."""
    errors: list[str] = []
    for _ in range(warmup):
        for kind in kinds:
            kind.run()  # fills idp's caches (client, keys, discovery, JWKS) and checks the flow
    for n in range(logins):
        turn = n % len(kinds)
        for kind in kinds[turn:] + kinds[:turn]:
            try:
                sample = kind.run()
            except (OSError, RuntimeError, KeyError, AssertionError) as exc:
                errors.append(f"{kind.label}: {str(exc)[:200]}")
                continue
            sample.round = n
            kind.samples.append(sample)
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--logins",
        "--rounds",
        type=int,
        default=400,
        help="logins of each kind (one of each per round)",
    )
    parser.add_argument("--warmup", type=int, default=5, help="untimed logins of each kind")
    parser.add_argument(
        "--trace", action="store_true", help="then one login of each kind, request by request, "
        "with idp's SQL statements"
    )  # fmt: skip
    args = parser.parse_args(argv)
    from run import BENCH, HOST, REPO, free_port, process_group, wait_ready

    sys.path.insert(0, str(REPO))  # tests.connections: the upstream and its driver
    from tests.connections.upstream import NODE, PACKAGE, running_upstream

    if NODE is None or not PACKAGE.exists():
        print(
            "social login bench: node or npm oidc-provider is missing (run `npm ci`)",
            file=sys.stderr,
        )
        return 1
    port = free_port()
    base = f"http://{HOST}:{port}"
    with (
        tempfile.TemporaryDirectory(prefix="idp-social-bench-") as tmp,
        running_upstream(redirect_uris=[f"{base}/login/callback/{CONNECTION}"]) as upstream,
    ):
        _, env, client_id = instance_with_connection(Path(tmp), base, upstream)
        log = Path(tmp) / "serve.log"
        cmd = [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"{HOST}:{port}",
               "--pythonpath", str(BENCH), APP]  # fmt: skip
        with process_group(cmd, log, env) as proc:
            wait_ready(base, proc, log)
            tag = secrets.token_hex(4)
            first = (f"verified-new-{i}-{tag}@upstream.test" for i in itertools.count())
            kinds = [
                Kind("password (argon2id excluded)",
                     lambda: password_login(base, client_id, upstream, PASSWORD_USER)),
                Kind("social, repeat (button)",
                     lambda: social_login(base, client_id, upstream, REPEAT_LOGIN, False)),
                Kind("social, repeat (connection=)",
                     lambda: social_login(base, client_id, upstream, REPEAT_LOGIN, True)),
                Kind("social, first login (button)",
                     lambda: social_login(base, client_id, upstream, next(first), False)),
            ]  # fmt: skip
            before = cpu_now(proc.pid, upstream.process.pid)
            began = time.perf_counter()
            errors = measure(kinds, args.logins, args.warmup)
            seconds = time.perf_counter() - began
            from cpu import foreign_share

            other = foreign_share(before, cpu_now(proc.pid, upstream.process.pid))
            traced = []
            if args.trace:
                traced = [
                    ("password", password_login(base, client_id, upstream, PASSWORD_USER, True)),
                    ("social, repeat (button)",
                     social_login(base, client_id, upstream, REPEAT_LOGIN, False, True)),
                    ("social, first login (button)",
                     social_login(base, client_id, upstream, next(first), False, True)),
                ]  # fmt: skip
    if any(not kind.samples for kind in kinds):
        print(f"social login bench: a kind never succeeded: {errors[:3]}", file=sys.stderr)
        return 1
    report(kinds, seconds, other)
    for label, sample in traced:
        print_trace(label, sample)
    if errors:
        print(f"{len(errors)} failed logins, e.g. {errors[0]}", file=sys.stderr)
    return 1 if errors else 0


def report(kinds: list[Kind], seconds: float, other: float | None) -> None:
    noisy = (
        " NOISY: the machine was busy, figures not comparable"
        if (other or 0) > NOISE_THRESHOLD
        else ""
    )
    share = "?" if other is None else f"{other:.0%}"
    print(
        f"social login overhead in idp, upstream time excluded: {len(kinds[0].samples)} logins "
        f"of each kind, interleaved, {seconds:.0f} s; other CPU {share}{noisy}"
    )
    print(
        "overhead = wall time of idp's requests in the login (this client's clock)\n"
        "         - time idp's worker spent in idp.core.http.fetch (upstream wait) and argon2id"
    )
    print(
        f"\n{'(ms, per login)':31} {'reqs':>4} {'p50':>6} {'p90':>6} {'p99':>6} "
        f"{'in-app':>7} {'CPU':>6} {'waited':>7} {'calls':>6} {'SQL':>5}"
    )
    for kind in kinds:
        overhead = kind.values(lambda s: s.overhead_ms)
        n = len(kind.samples)
        print(
            f"{kind.label:31} {statistics.median(kind.values(lambda s: s.requests)):4.0f} "
            f"{percentile(overhead, 0.5):6.1f} {percentile(overhead, 0.9):6.1f} "
            f"{percentile(overhead, 0.99):6.1f} "
            f"{statistics.median(kind.values(lambda s: s.app_overhead_ms)):7.1f} "
            f"{statistics.median(kind.values(lambda s: s.cpu_overhead_ms)):6.1f} "
            f"{statistics.median(kind.values(lambda s: s.excluded_ms)):7.1f} "
            f"{sum(kind.values(lambda s: s.report.get('upstream_calls', 0))) / n:6.2f} "
            f"{sum(kind.values(lambda s: s.report.get('sql', 0))) / n:5.1f}"
        )
    print(
        "  in-app: p50 of the same inside idp's WSGI app (no HTTP parsing, loopback, client);\n"
        "  CPU: p50 of the worker's CPU time in those requests, the CPU inside the upstream\n"
        "  calls and argon2id taken out (no waiting for a core: in-app's floor on this machine);\n"
        "  waited: p50 of what was subtracted; calls: upstream calls per login (mean);\n"
        "  SQL: SQL statements per login (mean, BEGIN and COMMIT included)"
    )
    calls: dict[str, int] = {}
    for kind in kinds[1:]:
        for sample in kind.samples:
            for path in sample.paths:
                calls[path] = calls.get(path, 0) + 1
    total = sum(len(k.samples) for k in kinds[1:])
    print(
        "  upstream calls over the social logins: "
        + ", ".join(f"{p} {c} ({c / total:.2f}/login)" for p, c in sorted(calls.items()))
    )

    password, repeat, direct = kinds[0], kinds[1], kinds[2]
    ref = percentile(password.values(lambda s: s.overhead_ms), 0.5)
    print(f"\nagainst the password login ({ref:.1f} ms p50), measured in the same rounds:")
    for kind in (repeat, direct):
        p50 = percentile(kind.values(lambda s: s.overhead_ms), 0.5)
        print(f"  {kind.label:29} ratio of p50s {p50 / ref:.2f}; per round, social - password: "
              f"p50 {statistics.median(paired(kind, password)):+.1f} ms")  # fmt: skip
    print(
        "  Like for like: each figure is idp's own work from /authorize to the code at the app,\n"
        "  the one external cost of each login taken out (the upstream's answers; the hash). The\n"
        "  button path makes one request more than the password login (the button POST);\n"
        "  connection= makes as many. Both end in the same complete_login (session, code)."
    )
    print(
        "upstream wait: timed inside idp's worker (a bench-only wrapper of idp.core.http.fetch,\n"
        "  summed per request, sent back in a response header), rather than the upstream's\n"
        "  latency timed from here and subtracted: it is exactly what each request waited (token,\n"
        "  userinfo, and discovery/JWKS when idp's cache fetches them), without this client's\n"
        "  scheduling noise. It includes idp's own DNS guard and TCP connect for each call."
    )
    p50 = percentile(repeat.values(lambda s: s.overhead_ms), 0.5)
    alt = percentile(direct.values(lambda s: s.overhead_ms), 0.5)
    cpu = statistics.median(repeat.values(lambda s: s.cpu_overhead_ms))
    verdict = "met" if p50 < TARGET_MS else "NOT met"
    print(
        f"\ntarget (issue 12): repeat social login overhead p50 < {TARGET_MS:.0f} ms: {verdict} "
        f"({p50:.1f} ms by the button; {alt:.1f} ms with connection=; idp's CPU by the "
        f"button {cpu:.1f} ms)"
    )


def paired(kind: Kind, reference: Kind) -> list[float]:
    """(this kind's overhead - the reference's) per round both completed."""
    ref = {s.round: s.overhead_ms for s in reference.samples}
    return [s.overhead_ms - ref[s.round] for s in kind.samples if s.round in ref]


def print_trace(label: str, sample: Sample) -> None:
    """One login request by request: wall time, in-app time, upstream wait, SQL."""
    print(f"\n{label}, request by request (one login, ms):")
    for request, wall, data in sample.trace:
        waited = data.get("upstream_ms", 0.0) + data.get("argon2_ms", 0.0)
        print(
            f"  {request[:48]:48} wall {wall:6.1f}  in-app {data.get('app_ms', 0.0):6.1f}  "
            f"waited {waited:5.1f}  SQL {data.get('sql', 0):.0f}"
            + (f"  upstream {' '.join(data['paths'])}" if data.get("paths") else "")
        )
        for statement in data.get("statements") or []:
            print(f"      {statement}")


if __name__ == "__main__":
    sys.exit(main())
