"""What the Actions runtime's economies (issue 18) must not change: an execution still confines
itself for good though the zygote set part of it before the fork, an action compiled by the host
behaves as one compiled in the sandbox, and the zygote's rehearsal leaves nothing behind."""

from __future__ import annotations

import binascii
import marshal
import shutil
from typing import Any

import pytest

from idp.actions.runner.sandbox import bytecode
from tests.security.test_sandbox import report, sandboxed

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


def test_an_execution_is_not_dumpable_and_keeps_no_new_privs_and_both_filters(op: Any) -> None:
    """A child no longer sets PR_SET_DUMPABLE and PR_SET_NO_NEW_PRIVS itself: the zygote set
    both before its first fork and a fork keeps them. If that ever stopped holding, another
    process of uid 65534 could read an execution's memory (its secrets) through /proc."""
    seen = report(
        sandboxed(
            op,
            """
            status = dict(
                line.split(":\\t", 1) for line in read("/proc/self/status", 1 << 16).splitlines()
                if ":\\t" in line
            )
            api.access_token.set_custom_claim("r", {
                "dumpable": LIBC.prctl(3, 0, 0, 0, 0),  # PR_GET_DUMPABLE
                "no_new_privs": status["NoNewPrivs"].strip(),
                "seccomp": status["Seccomp"].strip(),
                "filters": status["Seccomp_filters"].strip(),
            })
            """,
        )
    )
    assert seen == {"dumpable": 0, "no_new_privs": "1", "seccomp": "2", "filters": "2"}


def test_an_action_compiled_by_the_host_has_the_sandboxs_semantics(op: Any) -> None:
    """Same future flags as the child's own ``compile`` (annotations, which it inherited from
    the runtime), asserts kept (no -O), and tracebacks name the action's lines."""
    seen = report(
        sandboxed(
            op,
            """
            def typed(x: NotDefinedAnywhere) -> None:
                pass
            def failing():
                assert False, "kept"
            api.access_token.set_custom_claim("r", {
                "annotation": typed.__annotations__["x"],
                "assert": attempt(failing),
                "file": failing.__code__.co_filename,
            })
            """,
        )
    )
    assert seen == {"annotation": "NotDefinedAnywhere", "assert": "AssertionError: kept",
                    "file": "action.py"}  # fmt: skip
    failed = sandboxed(op, "x = 1\nraise ValueError('boom')")
    assert failed.error is not None
    assert failed.error["message"].startswith("ValueError: boom (line ")


def test_the_host_compiles_once_and_leaves_a_syntax_error_to_the_sandbox() -> None:
    source = "def on_execute_credentials_exchange(event, api):\n    pass\n"
    encoded = bytecode(source)
    assert encoded is not None and bytecode(source) is encoded  # cached per source
    code = marshal.loads(binascii.a2b_base64(encoded))
    assert code.co_filename == "action.py"
    assert bytecode("def broken(:\n") is None  # the child compiles it and reports the error


def test_the_zygotes_rehearsal_leaves_no_claim_or_log_behind(op: Any) -> None:
    """The zygote ran its own job 64 times before forking: an execution starts with no
    command, no log line and no output of it."""
    outcome = sandboxed(op, "api.access_token.set_custom_claim('r', 1)")
    assert outcome.error is None
    assert outcome.commands == [
        {"op": "access_token.set_custom_claim", "args": ["r", 1], "kwargs": {}}
    ]
    assert outcome.logs == ""
