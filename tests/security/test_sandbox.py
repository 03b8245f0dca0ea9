"""Actions sandbox containment (SECURITY.md §2.12, §4.5): hostile actions against the real runner.

Every test runs operator code in the bubblewrap runner the live server uses: files, environment,
processes, network, signals, state left for the next execution, forged output and other actions'
secrets. Resource limits (CPU, memory, output, threads, starvation, leaks) are in
``test_sandbox_resources.py``. Each hostile action tries, catches what it gets and reports it as
a claim; the test reads the report and asserts on it.
"""

from __future__ import annotations

import ast
import json
import os
import secrets
import shutil
import socket
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from idp.actions.models import ActionExecution
from idp.actions.runner.pool import Runner
from idp.actions.runner.sandbox import RUNTIME, Limits, Outcome, Zygote
from idp.extensions import services
from tests.conftest import TEST_DB_URL
from tests.helpers import jwt_parts

pytestmark = [
    pytest.mark.skipif(
        shutil.which("bwrap") is None,
        reason="bubblewrap (bwrap) is not installed: `make sandbox-deps` installs it",
    ),
    pytest.mark.usefixtures("fresh_chain"),
]

ENTRY = "on_execute_credentials_exchange"
RUNTIME_DIRS = ["/sandbox/runtime", "/sandbox/runtime/sandboxed"]
# Put in front of every hostile action: ``attempt`` turns any outcome into a short string, and
# ``syscall`` calls the kernel directly (what ctypes lets any action do).
PRELUDE = """\
import ctypes, json, os, sys

LIBC = ctypes.CDLL(None, use_errno=True)
NR = {
    "x86_64": {"pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438,
               "rt_sigqueueinfo": 129, "process_vm_readv": 310, "shmget": 29, "msgget": 68,
               "socket": 41, "ptrace": 101},
    "aarch64": {"pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438,
                "rt_sigqueueinfo": 138, "process_vm_readv": 270, "shmget": 194, "msgget": 186,
                "socket": 198, "ptrace": 117},
}[os.uname().machine]


def attempt(fn, *args, **kwargs):
    try:
        return "ok: " + repr(fn(*args, **kwargs))[:300]
    except BaseException as exc:
        return f"{type(exc).__name__}: {exc}"[:300]


def syscall(name, *args):
    result = LIBC.syscall(NR[name], *args)
    if result == -1:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result


def read(path, size=4096):
    with open(path, "rb") as fh:
        return fh.read(size).decode("latin-1")
"""


@pytest.fixture
def fresh_chain(op: Any) -> None:
    op.factory.clear_actions()


def action(body: str) -> str:
    """A credentials-exchange action: the prelude, then ``body`` as the handler."""
    return f"{PRELUDE}\n\ndef {ENTRY}(event, api):\n" + textwrap.indent(
        textwrap.dedent(body), "    "
    )


def runner_of(op: Any) -> Runner:
    with op.app.app_context():
        return services().actions.runner


def sandboxed(
    op: Any,
    body: str,
    *,
    event: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> Outcome:
    """One execution in the live server's runner (the production sandbox and zygote)."""
    job = {
        "trigger": "credentials-exchange",
        "entry": ENTRY,
        "code": action(body),
        "event": event or {},
        "secrets": secrets or {},
        "api": ["access_token.set_custom_claim"],
        "features": [],
    }
    return runner_of(op).run(job, Limits(timeout=timeout))


def report(outcome: Outcome) -> Any:
    """What the action reported with ``api.access_token.set_custom_claim("r", value)``."""
    assert outcome.error is None, outcome.error
    [command] = outcome.commands
    return command["args"][1]


def zygote_of(op: Any) -> Zygote:
    runner = runner_of(op)
    [zygote] = [z for (pid, deps), z in runner._zygotes.items() if pid == os.getpid() and not deps]
    return zygote


def token(op: Any, client: Any, audience: str) -> requests.Response:
    return requests.post(
        f"{op.url}/oauth/token",
        data={"grant_type": "client_credentials", "audience": audience},
        auth=client.basic,
        timeout=30,
    )


def executions(op: Any, action_id: str) -> list[ActionExecution]:
    return op.factory.executions(action_id)


def refused(result: str) -> bool:
    return not result.startswith("ok:")


def assert_still_serving(op: Any) -> None:
    """A normal action still runs in the same zygote and a token is issued."""
    client, audience = op.factory.m2m()
    op.factory.gen_action(
        "normal",
        "credentials-exchange",
        f"def {ENTRY}(event, api):\n    api.access_token.set_custom_claim('https://x/ok', 1)\n",
    )
    resp = token(op, client, audience)
    assert resp.status_code == 200, resp.text
    assert jwt_parts(resp.json()["access_token"])[1]["https://x/ok"] == 1


@pytest.fixture
def canary_listener() -> Iterator[socket.socket]:
    """A 127.0.0.1 TCP listener on the host; a test asserts nobody ever connected to it."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    # Sanity: the host itself can reach it (so "no connection" below means something).
    with socket.create_connection(listener.getsockname(), timeout=5):
        pass
    conn, _ = _accept(listener, wait=True)
    conn.close()
    yield listener
    with pytest.raises(BlockingIOError):
        listener.accept()  # zero connections from any sandbox
    listener.close()


def _accept(listener: socket.socket, wait: bool) -> tuple[socket.socket, Any]:
    import select

    if wait:
        select.select([listener], [], [], 5)
    return listener.accept()


# ------------------------------------------------------------------------------- files
def test_instance_database_keys_secret_and_config_are_unreadable(op: Any) -> None:
    instance = Path(op.app.instance_path)
    config = instance / "config.toml"
    config.write_text('# canary written by test_sandbox\nISSUER = "http://canary"\n')
    try:
        targets = [
            instance / "secret.key",  # the key that decrypts the signing keys
            config,
        ]
        if not TEST_DB_URL:  # on PostgreSQL the database is not a file
            targets.insert(0, instance / "idp.sqlite3")
        for path in targets:
            assert path.is_file(), f"{path} should exist on the host for this test to mean much"
        paths = [str(p) for p in targets]
        paths += [str(instance), str(Path.cwd()), str(Path(__file__)), "/etc/passwd", "/etc"]
        paths += ["/etc/shadow", "/root/.ssh", "/home", "/var", "/tmp", "/run", "/sys"]
        outcome = sandboxed(
            op,
            """
            api.access_token.set_custom_claim("r", {
                p: [attempt(read, p), attempt(os.listdir, p)] for p in event.paths
            })
            """,
            event={"paths": paths},
        )
        seen = report(outcome)
    finally:
        config.unlink()
    for name in paths:
        opened, listed = seen[name]
        assert opened.startswith("FileNotFoundError"), (name, opened)
        assert listed.startswith("FileNotFoundError"), (name, listed)
    secret_key = (instance / "secret.key").read_text().strip()
    assert secret_key not in json.dumps(seen) + outcome.logs


def test_only_a_minimal_read_only_root_is_visible(op: Any) -> None:
    prefix = Path(sys.base_prefix).resolve()
    ancestors = [str(p) for p in reversed(prefix.parents) if str(p) != "/"]
    seen = report(
        sandboxed(
            op,
            """
            listed = {p: attempt(lambda: sorted(os.listdir(p))) for p in event.dirs}
            api.access_token.set_custom_claim("r", listed)
            """,
            event={"dirs": ["/", "/sandbox", *RUNTIME_DIRS, "/dev", *ancestors]},
        )
    )
    allowed_root = {"usr", "bin", "lib", "lib64", "proc", "dev", "sandbox"}
    if not str(prefix).startswith("/usr/"):
        allowed_root.add(prefix.parts[1])  # the interpreter's own prefix, bound read-only
    assert set(eval_list(seen["/"])) <= allowed_root
    assert eval_list(seen["/sandbox"]) == ["runtime"]
    assert eval_list(seen["/sandbox/runtime"]) == ["pyseccomp.py", "sandboxed"]
    # the zygote's own modules, no more (the host's __pycache__ is not bound)
    modules = sorted(module.name for module in RUNTIME.glob("*.py"))
    assert eval_list(seen["/sandbox/runtime/sandboxed"]) == modules
    devices = {"null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm", "fd"}
    devices |= {"stdin", "stdout", "stderr", "core", "mqueue", "console"}
    assert set(eval_list(seen["/dev"])) <= devices  # no disks, no host devices
    # Above the interpreter's prefix, each directory holds only the next step of its path.
    for parent in ancestors:
        below = prefix.relative_to(parent).parts[0]
        assert eval_list(seen[parent]) == [below], (parent, seen[parent])


def eval_list(result: str) -> list[str]:
    assert result.startswith("ok: "), result
    value = ast.literal_eval(result[4:])
    assert isinstance(value, list)
    return value


# -------------------------------------------------------------------------- environment
def test_the_servers_environment_is_invisible(op: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "canary-" + secrets.token_hex(12)
    monkeypatch.setenv("IDP_TEST_CANARY", canary)
    runner = runner_of(op)
    runner.close()  # the next execution starts a fresh zygote, with the canary in our env
    outcome = sandboxed(
        op,
        """
        found = {"env": dict(os.environ), "proc": {}}
        for pid in os.listdir("/proc"):
            if pid.isdigit() or pid in ("self", "thread-self"):
                for name in ("environ", "cmdline"):
                    found["proc"][pid + "/" + name] = attempt(read, f"/proc/{pid}/{name}")
        print(os.environ)
        api.access_token.set_custom_claim("r", found)
        """,
    )
    found = report(outcome)
    assert os.environ["IDP_TEST_CANARY"] == canary
    assert "IDP_TEST_CANARY" not in found["env"]
    assert set(found["env"]) <= {"PATH", "PWD", "LC_CTYPE"}, found["env"]
    assert found["proc"]  # it did look
    assert canary not in json.dumps(found) + outcome.logs


def test_host_processes_are_invisible(op: Any) -> None:
    seen = report(
        sandboxed(
            op,
            """
            def alive(pid):  # executions that just ended may linger as zombies for ~50 ms
                return read(f"/proc/{pid}/stat").rpartition(")")[2].split()[0] != "Z"
            pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and attempt(alive, p) == "ok: True")
            def cmdline(pid):  # one that finished since (a zombie's cmdline is empty) says so
                line = attempt(read, f"/proc/{pid}/cmdline")
                return line if line != "ok: ''" or attempt(alive, pid) == "ok: True" else "exited"
            api.access_token.set_custom_claim("r", {
                "pids": pids, "self": os.getpid(), "ppid": os.getppid(),
                "cmdlines": {p: cmdline(p) for p in pids},
            })
            """,
        )
    )
    assert seen["self"] in seen["pids"]
    assert seen["ppid"] == 1  # the zygote is the namespace's init: nothing above it is visible
    # the zygote, this execution, the zygote's spare, at most one finishing
    assert len(seen["pids"]) <= 4, seen
    for pid, cmdline in seen["cmdlines"].items():
        assert (
            "/sandbox/runtime/sandboxed" in cmdline or "No such" in cmdline or cmdline == "exited"
        ), (pid, cmdline)
        assert "pytest" not in cmdline


# ------------------------------------------------------------------------------ network
def test_no_socket_can_be_opened_and_loopback_is_unreachable(
    op: Any, canary_listener: socket.socket
) -> None:
    port = canary_listener.getsockname()[1]
    seen = report(
        sandboxed(
            op,
            """
            import socket
            tries = {
                "tcp-loopback": attempt(socket.create_connection, ("127.0.0.1", event.port), 1),
                "tcp": attempt(socket.socket, socket.AF_INET, socket.SOCK_STREAM),
                "udp": attempt(socket.socket, socket.AF_INET, socket.SOCK_DGRAM),
                "inet6": attempt(socket.socket, socket.AF_INET6, socket.SOCK_STREAM),
                "unix": attempt(socket.socket, socket.AF_UNIX, socket.SOCK_STREAM),
                "unix-dgram": attempt(socket.socket, socket.AF_UNIX, socket.SOCK_DGRAM),
                "raw": attempt(socket.socket, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
                "packet": attempt(socket.socket, socket.AF_PACKET, socket.SOCK_RAW),
                "netlink": attempt(socket.socket, socket.AF_NETLINK, socket.SOCK_RAW),
                "socketpair": attempt(socket.socketpair),
                "syscall": attempt(syscall, "socket", 2, 1, 0),
                "getaddrinfo": attempt(socket.getaddrinfo, "localhost", event.port),
            }
            api.access_token.set_custom_claim("r", {
                "tries": tries, "tcp": read("/proc/net/tcp"), "dev": read("/proc/net/dev"),
            })
            """,
            event={"port": port},
        )
    )
    for name, result in seen["tries"].items():
        if name == "getaddrinfo":
            continue  # resolving a name opens nothing; connecting is what must fail
        assert result.startswith("PermissionError"), (name, result)
    assert f":{port:04X}" not in seen["tcp"]  # the host's listener is not in this namespace
    interfaces = {line.split(":")[0].strip() for line in seen["dev"].splitlines()[2:]}
    assert interfaces <= {"lo"}


@pytest.mark.parametrize(
    ("url", "allowed_hosts", "expected"),
    [
        ("http://127.0.0.1:{port}/", ["127.0.0.1"], "non-public address"),
        ("http://localhost:{port}/", ["localhost"], "non-public address"),
        ("http://2130706433:{port}/", ["2130706433"], "non-public address"),
        ("http://0.0.0.0:{port}/", ["0.0.0.0"], "non-public address"),
        ("http://169.254.169.254/latest/meta-data/", ["169.254.169.254"], "non-public address"),
        ("https://10.0.0.1/", ["10.0.0.1"], "non-public address"),
        ("https://192.168.1.1/", ["192.168.1.1"], "non-public address"),
        ("http://[::1]:{port}/", [], "allow-list"),
        ("file:///etc/passwd", [], "only absolute http(s)"),
        ("file://localhost/etc/passwd", ["localhost"], "only absolute http(s)"),
        ("https://user:pass@example.com/", ["example.com"], "credentials"),
        ("https://example.com@127.0.0.1:{port}/", ["127.0.0.1"], "credentials"),
        ("https://example.org/", ["example.com"], "allow-list"),
        ("https://example.com.attacker.net/", ["example.com", "*.example.com"], "allow-list"),
    ],
    ids=[
        "loopback",
        "localhost",
        "decimal-loopback",
        "zero-address",
        "metadata",
        "ten-net",
        "192-168",
        "ipv6-loopback",
        "file",
        "file-localhost",
        "userinfo",
        "userinfo-to-loopback",
        "not-allow-listed",
        "suffix-trick",
    ],
)
def test_api_http_refuses_private_networks_odd_schemes_and_unlisted_hosts(
    op: Any, canary_listener: socket.socket, url: str, allowed_hosts: list[str], expected: str
) -> None:
    assert not services_networks(op), "the default configuration allows no private network"
    target = url.format(port=canary_listener.getsockname()[1])
    client, audience = op.factory.m2m()
    op.factory.gen_action(
        "fetcher",
        "credentials-exchange",
        f"def {ENTRY}(event, api):\n"
        "    try:\n"
        f"        answer = 'reached: ' + str(api.http.get({target!r}).status)\n"
        "    except Exception as exc:\n"
        "        answer = type(exc).__name__ + ': ' + str(exc)\n"
        "    api.access_token.set_custom_claim('https://x/http', answer)\n",
        allowed_hosts=allowed_hosts,
    )
    resp = token(op, client, audience)
    assert resp.status_code == 200, resp.text
    answer = jwt_parts(resp.json()["access_token"])[1]["https://x/http"]
    assert answer.startswith("HttpError: ") and expected in answer, answer


def services_networks(op: Any) -> tuple[Any, ...]:
    with op.app.app_context():
        return tuple(services().actions.networks)


# ------------------------------------------------------------------------------ processes
@pytest.mark.parametrize(
    "attack",
    [
        "os.fork()",
        "__import__('subprocess').run(['/usr/bin/true'])",
        "os.execv('/usr/bin/true', ['true'])",
        "os.posix_spawn('/usr/bin/true', ['true'], {})",
        "__import__('multiprocessing').Process(target=print).start()",
        "__import__('pty').fork()",
        "os.kill(1, 9)",
        "os.kill(os.getppid(), 9)",
        "os.kill(os.getppid(), 19)",
        "os.killpg(0, 9)",
        "syscall('pidfd_send_signal', syscall('pidfd_open', os.getppid(), 0), 19, None, 0)",
        "syscall('rt_sigqueueinfo', os.getppid(), 19, ctypes.create_string_buffer(b'\\x13\\0\\0\\0' * 2 + b'\\xff\\xff\\xff\\xff', 128))",
        "os.setpriority(os.PRIO_PROCESS, os.getppid(), 19)",
        "os.sched_setaffinity(os.getppid(), {0})",
        "__import__('resource').setrlimit(__import__('resource').RLIMIT_NOFILE, (4096, 4096))",
        "__import__('resource').setrlimit(__import__('resource').RLIMIT_CPU, (9999, 9999))",
    ],
    ids=[
        "fork",
        "subprocess",
        "execv",
        "posix_spawn",
        "multiprocessing",
        "pty-fork",
        "kill-init",
        "kill-parent",
        "stop-parent",
        "killpg",
        "pidfd-signal",
        "sigqueue",
        "renice-zygote",
        "pin-zygote",
        "raise-nofile",
        "raise-cpu",
    ],
)
def test_no_process_can_be_started_or_signalled(op: Any, attack: str) -> None:
    ppid = report(sandboxed(op, "api.access_token.set_custom_claim('r', os.getppid())"))
    zygote = zygote_of(op)
    bwrap_pid = zygote.process.pid if zygote.process else None
    seen = report(
        sandboxed(op, f"api.access_token.set_custom_claim('r', attempt(lambda: {attack}))\n")
    )
    assert refused(seen), seen
    assert seen.split(":")[0] in {"PermissionError", "OSError", "ValueError"}, seen
    # The same zygote is still there and still serves; so does the server.
    assert report(sandboxed(op, "api.access_token.set_custom_claim('r', os.getppid())")) == ppid
    assert zygote_of(op) is zygote and zygote.alive()
    assert zygote.process is not None and zygote.process.pid == bwrap_pid
    assert_still_serving(op)


def test_os_system_runs_nothing(op: Any) -> None:
    seen = report(sandboxed(op, "api.access_token.set_custom_claim('r', os.system('true'))"))
    assert seen != 0  # the shell never started


# ------------------------------------------------------------------------ state leftovers
def test_nothing_survives_into_the_next_execution(op: Any) -> None:
    paths = ["/tmp/leftover", "/dev/shm/leftover", "/leftover", "/sandbox/leftover"]
    paths += ["/dev/leftover", "/var/tmp/leftover", "/usr/leftover", "/proc/leftover"]
    paths += [str(Path(sys.base_prefix).resolve() / "leftover")]
    first = report(
        sandboxed(
            op,
            """
            import builtins, json as json_module, sys as sys_module
            def write(path):
                with open(path, "w") as fh:
                    fh.write("left over")
            builtins.LEFTOVER = "left over"
            json_module.LEFTOVER = "left over"
            sys_module.modules["leftover"] = json_module
            sys_module.modules["__main__"].LEFTOVER = "left over"
            globals()["LEFTOVER"] = "left over"
            os.environ["LEFTOVER"] = "left over"
            os.chdir("/usr")
            api.access_token.set_custom_claim("r", {
                **{p: attempt(write, p) for p in event.paths},
                **{p + "/": attempt(os.mkdir, p + "-dir") for p in event.paths},
                "shm": attempt(syscall, "shmget", 4242, 4096, 0o1000 | 0o600),
                "msg": attempt(syscall, "msgget", 4243, 0o1000 | 0o600),
                "fifo": attempt(os.mkfifo, "/dev/shm/leftover-fifo"),
            })
            """,
            event={"paths": paths},
        )
    )
    for what, result in first.items():
        assert refused(result), (what, result)
    second = report(
        sandboxed(
            op,
            """
            import builtins, json as json_module
            api.access_token.set_custom_claim("r", {
                "builtins": hasattr(builtins, "LEFTOVER"),
                "module": hasattr(json_module, "LEFTOVER"),
                "sys.modules": "leftover" in sys.modules,
                "main": hasattr(sys.modules["__main__"], "LEFTOVER"),
                "globals": "LEFTOVER" in globals(),
                "environ": "LEFTOVER" in os.environ,
                "cwd": os.getcwd(),
                "files": [p for p in event.paths if os.path.lexists(p) or os.path.lexists(p + "-dir")],
                "shm": attempt(syscall, "shmget", 4242, 0, 0),
                "msg": attempt(syscall, "msgget", 4243, 0),
                "sysvipc": read("/proc/sysvipc/shm").splitlines()[1:],
            })
            """,
            event={"paths": paths},
        )
    )
    assert second["cwd"] == "/"
    assert second["files"] == []
    assert refused(second["shm"]) and refused(second["msg"])
    assert second["sysvipc"] == []
    for flag in ("builtins", "module", "sys.modules", "main", "globals", "environ"):
        assert second[flag] is False, flag


# ------------------------------------------------------------------------- forged output
@pytest.mark.parametrize("claim", ["sub", "iss", "aud", "scope"])
def test_a_forged_result_line_cannot_set_a_reserved_claim(op: Any, claim: str) -> None:
    client, audience = op.factory.m2m()
    forged = {
        "done": True,
        "commands": [
            {"op": "access_token.set_custom_claim", "args": [claim, "evil"], "kwargs": {}}
        ],
        "logs": "",
        "error": None,
    }
    line = json.dumps(forged).encode() + b"\n"
    action_id = op.factory.gen_action(
        "forger",
        "credentials-exchange",
        f"import os\n\ndef {ENTRY}(event, api):\n    os.write(1, {line!r})\n    os._exit(0)\n",
    )
    resp = token(op, client, audience)
    assert resp.status_code == 403, resp.text
    assert "access_token" not in resp.json()
    [record] = executions(op, action_id)
    assert record.outcome == "invalid"
    assert record.error is not None and "invalid command" in record.error


# -------------------------------------------------------------------- other actions' data
def test_an_action_cannot_read_a_concurrent_executions_secrets(op: Any) -> None:
    secret = "victim-" + secrets.token_hex(16)
    sandboxed(op, "pass")
    zygote = zygote_of(op)
    victim: dict[str, Outcome] = {}

    def run_victim() -> None:
        victim["outcome"] = sandboxed(
            op,
            """
            import time
            held = event.secrets.API_KEY * 2
            time.sleep(2)
            api.access_token.set_custom_claim("r", len(held))
            """,
            secrets={"API_KEY": secret},
        )

    thread = threading.Thread(target=run_victim)
    thread.start()
    try:
        wait_for_executions(zygote, 1)
        attacker = sandboxed(
            op,
            """
            import time
            me = os.getpid()
            def alive(pid):  # not an execution that just ended (a zombie has no memory left)
                return read(f"/proc/{pid}/stat").rpartition(")")[2].split()[0] != "Z"
            for _ in range(200):
                others = [
                    int(p) for p in os.listdir("/proc")
                    if p.isdigit() and int(p) not in (1, me) and attempt(alive, p) == "ok: True"
                ]
                if others:
                    break
                time.sleep(0.01)
            def vm_read(pid):
                buf = ctypes.create_string_buffer(64)
                local = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 64)
                remote = (ctypes.c_void_p * 2)(0x400000, 64)
                return syscall("process_vm_readv", pid, local, 1, remote, 1, 0)
            def mem(pid):
                with open(f"/proc/{pid}/mem", "rb") as fh:
                    maps = read(f"/proc/{pid}/maps", 1 << 16)
                    found = []
                    for line in maps.splitlines():
                        start, end = (int(x, 16) for x in line.split()[0].split("-"))
                        fh.seek(start)
                        found.append(fh.read(min(end - start, 1 << 20)).decode("latin-1"))
                    return "".join(found)
            stolen = {}
            for pid in [*others, 1]:
                stolen[pid] = {
                    "mem": attempt(mem, pid),
                    "maps": attempt(read, f"/proc/{pid}/maps"),
                    "environ": attempt(read, f"/proc/{pid}/environ"),
                    "fd": attempt(os.listdir, f"/proc/{pid}/fd"),
                    "stdin": attempt(read, f"/proc/{pid}/fd/0"),
                    "vm_readv": attempt(vm_read, pid),
                    "getfd": attempt(lambda: syscall("pidfd_getfd", syscall("pidfd_open", pid, 0), 0, 0)),
                    "stop": attempt(os.kill, pid, 19),
                }
            api.access_token.set_custom_claim("r", {"others": others, "stolen": stolen})
            """,
        )
    finally:
        thread.join(timeout=30)
    seen = report(attacker)
    assert seen["others"], "the victim's execution should have been running"
    assert secret not in json.dumps(seen) + attacker.logs
    denied = ("PermissionError", "OSError: [Errno 1]")
    # a process that ended during the probe (the zygote's spare, an execution finishing) is
    # gone, not denied; the victim, asleep for 2 s, must be denied everything
    gone = ("ProcessLookupError", "FileNotFoundError", "OSError: [Errno 3]")
    for pid, tries in seen["stolen"].items():
        # Listing /proc/<pid>/fd shows fd numbers only; following any of them is refused.
        assert tries.pop("fd") in {"ok: ['0', '1', '2']", "ok: ['0', '1', '2', '3']"} or refused(
            tries["stdin"]
        )
        for what, result in tries.items():
            assert refused(result), (pid, what, result)
            assert result.startswith((*denied, *gone)), (pid, what, result)
    assert any(
        all(result.startswith(denied) for result in tries.values())
        for pid, tries in seen["stolen"].items() if pid != "1"
    ), seen["stolen"]  # fmt: skip
    # The victim was neither stopped nor disturbed and got its own secret.
    assert report(victim["outcome"]) == 2 * len(secret)


def test_the_zygote_is_not_dumpable(op: Any) -> None:
    """Before this was fixed, /proc/1/mem of the zygote (and of bwrap's reaper) opened read-write
    from inside an execution: code injected there runs without seccomp and sees every job."""
    seen = report(
        sandboxed(
            op,
            """
            def open_rw(path):
                os.close(os.open(path, os.O_RDWR))
            api.access_token.set_custom_claim("r", {
                "mem": attempt(open_rw, "/proc/1/mem"),
                "fd-link": attempt(os.readlink, "/proc/1/fd/0"),
                "fd-open": attempt(read, "/proc/1/fd/0"),
                "environ": attempt(read, "/proc/1/environ"),
                "self": attempt(open_rw, "/proc/self/mem"),
            })
            """,
        )
    )
    assert seen["self"].startswith("ok")  # its own memory, of course
    for what in ("mem", "fd-link", "fd-open", "environ"):
        assert seen[what].startswith("PermissionError"), (what, seen[what])


def test_an_execution_cannot_reach_the_spare_that_runs_the_next_one(op: Any) -> None:
    """The zygote forks the next execution's process ahead of time (its spare). An execution
    sees it in /proc but can neither read nor write its memory, take its descriptors (the
    socket its order arrives on), stop it, or trace it; the next execution runs untouched."""
    sandboxed(op, "pass")
    seen = report(
        sandboxed(
            op,
            """
            import time
            me = os.getpid()
            def alive(pid):  # not an execution that just ended (a zombie has no memory left)
                return read(f"/proc/{pid}/stat").rpartition(")")[2].split()[0] != "Z"
            def waiting():  # the spare (and at most an execution that is finishing)
                return [
                    int(p) for p in os.listdir("/proc")
                    if p.isdigit() and int(p) not in (1, me) and attempt(alive, p) == "ok: True"
                ]
            for _ in range(300):
                spares = waiting()
                if spares:
                    break
                time.sleep(0.01)
            def open_rw(path):
                os.close(os.open(path, os.O_RDWR))
            tried = {}
            for pid in spares:
                tried[pid] = {
                    "mem-rw": attempt(open_rw, f"/proc/{pid}/mem"),
                    "mem-read": attempt(read, f"/proc/{pid}/mem"),
                    **{  # fd numbers can be listed; what they are and hold cannot be had
                        f"fd{fd}-{how}": attempt(do, f"/proc/{pid}/fd/{fd}")
                        for fd in ("0", "1", "2", "3", "4")
                        for how, do in (("link", os.readlink), ("open", read))
                    },
                    "getfd": attempt(lambda: syscall("pidfd_getfd", syscall("pidfd_open", pid, 0), 4, 0)),
                    "ptrace": attempt(syscall, "ptrace", 16, pid, 0, 0),  # PTRACE_ATTACH
                    "stop": attempt(os.kill, pid, 19),
                }
            api.access_token.set_custom_claim("r", {"spares": spares, "tried": tried})
            """,
        )
    )
    assert seen["spares"], "no spare was waiting: the attack reached nothing"
    for pid, results in seen["tried"].items():
        for what, result in results.items():
            assert refused(result), (pid, what, result)
    secret = "next-" + secrets.token_hex(16)
    after = sandboxed(
        op, "api.access_token.set_custom_claim('r', event.secrets.K[::-1])", secrets={"K": secret}
    )
    assert report(after) == secret[::-1]


def wait_for_executions(zygote: Zygote, count: int, timeout: float = 10.0) -> None:
    """Wait until the zygote (seen from the host) has ``count`` execution children."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(execution_pids(zygote)) >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"fewer than {count} executions started in the sandbox")


def execution_pids(zygote: Zygote) -> list[int]:
    """Host pids of the running executions: bwrap -> zygote (pid 1 inside) -> executions.
    The zygote's spare (a child waiting for its order, bound by the zygote's filter alone)
    is not one yet."""
    assert zygote.process is not None
    pids: list[int] = []
    for zygote_pid in children(zygote.process.pid):
        pids += [pid for pid in children(zygote_pid) if not zombie(pid) and not spare(pid)]
    return pids


def spare(pid: int) -> bool:
    """A child of the zygote that has no job yet: its stdout is not an execution's pipe."""
    try:
        return not os.readlink(f"/proc/{pid}/fd/1").startswith("pipe:")
    except FileNotFoundError:
        return False


def zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(p) for p in fh.read().split()]
    except FileNotFoundError:
        pass
    return found
