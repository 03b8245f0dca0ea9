"""Actions sandbox resources (SECURITY.md §2.12, §4.5): CPU, memory, output, result size, threads,
starvation of other logins, and leaks after many executions; against the real bubblewrap runner.

Containment of files, environment, network, processes, state and secrets is in
``test_sandbox.py``, whose helpers this module shares.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.conftest import LiveServer, build_app, serving
from tests.helpers import jwt_parts
from tests.security.test_sandbox import (
    ENTRY,
    children,
    execution_pids,
    executions,
    refused,
    report,
    runner_of,
    sandboxed,
    spare,
    token,
    zygote_of,
)

pytestmark = [
    pytest.mark.skipif(
        shutil.which("bwrap") is None,
        reason="bubblewrap (bwrap) is not installed: `make sandbox-deps` installs it",
    ),
    pytest.mark.usefixtures("fresh_chain"),
]


@pytest.fixture
def fresh_chain(op: Any) -> None:
    op.factory.clear_actions()


def deploy(op: Any, body: str, **options: Any) -> tuple[Any, str, str]:
    """(client, audience, action id): a credentials-exchange action whose handler is ``body``."""
    client, audience = op.factory.m2m()
    action_id = op.factory.gen_action(
        "hog", "credentials-exchange", f"def {ENTRY}(event, api):\n{body}", **options
    )
    return client, audience, action_id


def fails_closed_with(op: Any, body: str, outcome: str, **options: Any) -> str:
    """Run ``body`` in a real token request; it must fail closed and be recorded as ``outcome``.
    Returns the recorded error."""
    client, audience, action_id = deploy(op, body, **options)
    resp = token(op, client, audience)
    assert resp.status_code == 403, resp.text
    assert "access_token" not in resp.json()
    [record] = executions(op, action_id)
    assert record.outcome == outcome, (record.outcome, record.error)
    assert record.error is not None
    assert len(record.logs) <= 4096
    return record.error


# --------------------------------------------------------------------------------- CPU
@pytest.mark.parametrize(
    "body",
    ["    while True:\n        pass\n", "    import time\n    time.sleep(60)\n"],
    ids=["spin", "sleep"],
)
def test_cpu_and_wall_clock_end_at_the_timeout(op: Any, body: str) -> None:
    fails_closed_with(op, body, "timeout", timeout_ms=500)


# ------------------------------------------------------------------------------ memory
@pytest.mark.parametrize(
    "body",
    [
        "    x = bytearray(512 * 1024 * 1024)\n",
        "    x = []\n    while True:\n        x.append(bytearray(1 << 20))\n",
        "    x = 'x' * (1 << 40)\n",
    ],
    ids=["one-block", "gradual", "huge-string"],
)
def test_a_memory_bomb_is_a_memory_error(op: Any, body: str) -> None:
    fails_closed_with(op, body, "memory", timeout_ms=5000)


# ------------------------------------------------------------------------------ output
@pytest.mark.parametrize(
    "body",
    [
        "    print('x' * 10_000_000)\n",
        "    for _ in range(10_000):\n        print('y' * 1000)\n",
        "    import sys\n    sys.__stderr__.write('z' * 10_000_000)\n",
    ],
    ids=["one-line", "many-lines", "stderr"],
)
def test_printing_ten_megabytes_stores_a_few_kilobytes(op: Any, body: str) -> None:
    client, audience, action_id = deploy(
        op, body + "    api.access_token.set_custom_claim('https://x/a', 1)\n"
    )
    resp = token(op, client, audience)
    assert resp.status_code == 200, resp.text
    [record] = executions(op, action_id)
    assert record.outcome == "success"
    assert len(record.logs) <= 4096
    if "stderr" in body:
        assert record.logs == ""  # the real stderr is /dev/null: the flood went nowhere
    else:
        assert record.logs.endswith("[output truncated]") or len(record.logs) == 4096


def test_raw_output_past_the_cap_is_refused(op: Any) -> None:
    error = fails_closed_with(
        op,
        "    import os\n    os.write(1, b'x' * 10_000_000)\n",
        "invalid_output",
    )
    assert "output" in error or "too long" in error


# ------------------------------------------------------------------------ result size
@pytest.mark.parametrize(
    "body",
    [
        "    api.access_token.set_custom_claim('https://x/big', 'x' * 200_000)\n",
        "    for i in range(20_000):\n        api.access_token.set_custom_claim(f'https://x/{i}', i)\n",
        '    import os\n    os.write(1, b\'{"done": true, "commands": [], "logs": "\' + b\'a\' * 300_000 + b\'"}\\n\')\n    os._exit(0)\n',
    ],
    ids=["one-huge-claim", "many-commands", "forged-huge-line"],
)
def test_a_huge_result_line_is_refused(op: Any, body: str) -> None:
    error = fails_closed_with(op, body, "invalid_output")
    assert "too long" in error


# ------------------------------------------------------------------------------ threads
@pytest.mark.parametrize(
    "attack",
    [
        "__import__('threading').Thread(target=print).start()",
        "__import__('_thread').start_new_thread(print, ())",
        "__import__('concurrent.futures').futures.ThreadPoolExecutor(4).submit(print).result()",
    ],
    ids=["threading", "_thread", "executor"],
)
def test_threads_are_refused(op: Any, attack: str) -> None:
    seen = report(
        sandboxed(op, f"api.access_token.set_custom_claim('r', attempt(lambda: {attack}))")
    )
    assert refused(seen) and seen.startswith("RuntimeError"), seen


def test_a_thread_storm_fails_closed(op: Any) -> None:
    error = fails_closed_with(
        op,
        "    import threading\n"
        "    for _ in range(1000):\n"
        "        threading.Thread(target=lambda: None).start()\n",
        "exception",
    )
    assert "can't start new thread" in error


# -------------------------------------------------------------- other logins keep going
@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A second server in this process, with its own runner and zygote. Always on SQLite in
    its own folder: on PostgreSQL, building it would reset the schema under ``op``."""
    tmp = tmp_path_factory.mktemp("other-instance")
    database = f"sqlite:///{tmp / 'idp.sqlite3'}"
    with serving(lambda port: build_app(tmp, port, DATABASE_URL=database)) as server:
        yield server


def test_spinning_actions_do_not_hold_up_other_logins(op: Any, other: LiveServer) -> None:
    client, audience, spinner = deploy(op, "    while True:\n        pass\n", timeout_ms=3000)
    other_client, other_audience = other.factory.m2m()
    other.factory.gen_action(
        "quick",
        "credentials-exchange",
        f"def {ENTRY}(event, api):\n    api.access_token.set_custom_claim('https://x/q', 1)\n",
    )
    token(other, other_client, other_audience)  # warm the other server's sandbox
    runner_of(op).ensure_probed()
    with ThreadPoolExecutor(2) as pool:
        spinning: list[Future[requests.Response]] = [
            pool.submit(token, op, client, audience) for _ in range(2)
        ]
        wait_until(lambda: zygote_exists(op) and len(execution_pids(zygote_of(op))) >= 2)
        # While both spin: a login on another server, and a request on this one that needs
        # no action, both answer before either spinning request ends.
        quick = token(other, other_client, other_audience)
        discovery = requests.get(f"{op.url}/.well-known/openid-configuration", timeout=30)
        jwks = requests.get(discovery.json()["jwks_uri"], timeout=30)
        still_spinning = [not f.done() for f in spinning]
        results = [f.result(timeout=30) for f in spinning]
    assert quick.status_code == 200, quick.text
    assert jwt_parts(quick.json()["access_token"])[1]["https://x/q"] == 1
    assert discovery.status_code == 200 and jwks.status_code == 200
    assert still_spinning == [True, True]
    assert [r.status_code for r in results] == [403, 403]
    assert [r.outcome for r in executions(op, spinner)] == ["timeout", "timeout"]


def zygote_exists(op: Any) -> bool:
    runner = runner_of(op)
    return any(pid == os.getpid() and z.process for (pid, _), z in runner._zygotes.items())


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


# -------------------------------------------------------------------------------- leaks
def test_a_hundred_executions_leak_no_fds_and_keep_one_zygote(op: Any) -> None:
    bodies = [
        "api.access_token.set_custom_claim('r', 1)",
        "raise RuntimeError('boom')",
        "os.write(1, b'not json\\n')",  # invalid output: the host kills the execution
        "os._exit(3)",  # a crash
    ]
    sandboxed(op, bodies[0])
    zygote = zygote_of(op)
    bwraps = bwrap_children()
    fds = len(os.listdir("/proc/self/fd"))
    kinds = []
    for i in range(100):
        outcome = sandboxed(op, bodies[i % len(bodies)])
        kinds.append(outcome.error["kind"] if outcome.error else "ok")
    assert set(kinds) == {"ok", "exception", "invalid_output", "crash"}
    assert len(os.listdir("/proc/self/fd")) <= fds + 2
    runner = runner_of(op)
    mine = [z for (pid, deps), z in runner._zygotes.items() if pid == os.getpid() and not deps]
    assert mine == [zygote] and zygote.alive()
    assert bwrap_children() == bwraps  # no sandbox started or left behind
    assert zygote.process is not None
    # one zygote inside the one bubblewrap (below)
    [inner] = children(zygote.process.pid)
    # every execution ended and was reaped; what is left is at most the zygote's spare
    wait_until(lambda: [pid for pid in children(inner) if not spare(pid)] == [])
    assert len(children(inner)) <= 1


def test_the_spare_is_confined_before_it_gets_a_job(op: Any) -> None:
    """Executions mostly run in the zygote's spare, which confines itself before its order
    arrives: by the time a job reaches it, seccomp and the rlimits are already in force."""
    sandboxed(op, "pass")
    zygote = zygote_of(op)
    assert zygote.process is not None
    [inner] = children(zygote.process.pid)

    def status(pid: int) -> dict[str, str]:
        with open(f"/proc/{pid}/status") as fh:
            lines = fh.read().splitlines()
        return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}

    def confined_spares() -> list[int]:  # the zygote's filter, and its own small one
        return [p for p in children(inner) if spare(p) and status(p)["Seccomp_filters"] == "2"]

    wait_until(lambda: bool(confined_spares()))
    [waiting] = confined_spares()
    assert status(waiting)["Seccomp"] == "2" and status(waiting)["NoNewPrivs"] == "1"
    with open(f"/proc/{waiting}/limits") as fh:
        limits = {line[:26].strip(): line[26:].split() for line in fh.read().splitlines()[1:]}
    assert limits["Max processes"][:2] == ["0", "0"]
    assert limits["Max open files"][:2] == ["16", "16"]
    assert limits["Max file size"][:2] == ["0", "0"]
    assert limits["Max address space"][0] != "unlimited"


def bwrap_children() -> list[int]:
    found = []
    for pid in children(os.getpid()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if fh.read().split(b"\0")[0].endswith(b"bwrap"):
                    found.append(pid)
        except FileNotFoundError:
            continue
    return sorted(found)
