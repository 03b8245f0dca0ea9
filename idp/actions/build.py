"""Deployed versions and their build: pip installs a version's dependencies in the background.

Deploying freezes the draft into a numbered version at once. A version without dependencies is
``built`` there and then and goes live. One with dependencies is ``building`` until a job has
pip-installed them into the version's own read-only directory; it becomes ``built`` (and live,
unless the action was deployed again or rolled back meanwhile) or ``failed``, with the tail of
pip's output kept on the version either way. ``Action.live_version``, which the engine runs,
therefore only ever names a built version.

A job starts when the deploying transaction commits (its own session would not see the version
before) and is dropped when that transaction rolls back. It runs on a small pool in this
process, with its own app context and session; a CLI process waits for it before it exits.

This module imports neither ``idp.extensions`` nor ``idp.actions.service`` (both import it, the
first through the engine); it reaches the app's bundle through ``current_app``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, current_app
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, SessionTransaction

from idp.actions.models import Action, ActionSecret, ActionVersion
from idp.core import clock
from idp.core.crypto import SecretBox, random_token

if TYPE_CHECKING:
    from idp.actions.engine import ActionsEngine

log = logging.getLogger(__name__)

BUILDING, BUILT, FAILED = "building", "built", "failed"
PIP_TIMEOUT = 600  # seconds for one version's whole pip install
OUTPUT_BYTES = 8192  # pip's output kept on the version: its last 8 kB
MESSAGE_CHARS = 2000  # of that, what a refusal quotes
_JOBS = "idp.actions.build.jobs"  # Session.info key: builds waiting for the commit
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Job:
    """One version to build, with what the job needs outside the deploying request."""

    app: Flask
    version_id: str
    action_id: str
    lines: tuple[str, ...]
    deps_root: Path
    live_before: int | None  # the action's live version when deployed: unchanged => go live


class _Pool:
    """This process's build threads, created on the first deploy (never in a forking parent
    that deploys nothing). Two at a time: one slow install does not hold up every other."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._running: set[Future[None]] = set()

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(2, thread_name_prefix="action-build")
            future = self._executor.submit(run, job)
            self._running.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._running.discard(future)

    def wait(self, timeout: float | None) -> bool:
        with self._lock:
            running = list(self._running)
        return not wait_futures(running, timeout).not_done


_pool = _Pool()


def wait(timeout: float | None = None) -> bool:
    """Wait for this process's builds (tests; a CLI exits only after its own anyway). False
    when some were still running after ``timeout`` seconds."""
    return _pool.wait(timeout)


# ------------------------------------------------------------------------------ deploying
def new_version(
    session: Session, keep: int, action: Action, deps_root: Path, by: str
) -> ActionVersion:
    """The draft frozen into the next numbered version: live at once without dependencies,
    else ``building`` (the action keeps its live version until the build succeeds)."""
    number = (
        session.scalar(select(func.max(ActionVersion.number)).where(
            ActionVersion.action_id == action.id
        ))
        or 0
    ) + 1  # fmt: skip
    version = ActionVersion(
        id="ver_" + random_token(12),
        action_id=action.id,
        number=number,
        code=action.code,
        dependencies=list(action.dependencies),
        build_status=BUILDING if action.dependencies else BUILT,
        created_by=by[:255],
        created_at=clock.now(),
    )
    session.add(version)
    action.updated_at = version.created_at  # also orders this deploy with a build's go-live
    if version.dependencies:
        job = Job(current_app._get_current_object(), version.id, action.id,  # type: ignore[attr-defined]
                  tuple(version.dependencies), deps_root, action.live_version)  # fmt: skip
        _on_commit(session, job)
    else:
        action.live_version = number
    _prune(session, keep, action, deps_root)
    session.flush()
    return version


def _prune(session: Session, keep: int, action: Action, deps_root: Path) -> None:
    versions = list(
        session.scalars(
            select(ActionVersion)
            .where(ActionVersion.action_id == action.id)
            .order_by(ActionVersion.number.desc())
        )
    )
    for old in versions[keep - 1 :]:
        if old.number != action.live_version:
            if old.deps_dir:
                shutil.rmtree(deps_root / old.deps_dir, ignore_errors=True)
            session.delete(old)  # a build still running for it finds it gone and cleans up


def newest(session: Session, action: Action) -> ActionVersion | None:
    return session.scalar(
        select(ActionVersion)
        .where(ActionVersion.action_id == action.id)
        .order_by(ActionVersion.number.desc())
        .limit(1)
    )


def refusal(name: str, version: ActionVersion) -> str | None:
    """Why ``version`` cannot run (bound, rolled back to): None once it is built."""
    if version.build_status == BUILDING:
        return (
            f"{name!r} version {version.number}: its dependencies are still being installed;"
            " try again once its status is built"
        )
    if version.build_status == FAILED:
        why = (
            f"{name!r} version {version.number} failed to build, its dependencies did not"
            f" install: {version.build_error}"
        )
        quoted = (version.build_output or "").strip()[-MESSAGE_CHARS:]
        return f"{why}; pip's output ends with:\n{quoted}" if quoted else why
    return None


# ------------------------------------------------------------------- after the commit
def _on_commit(session: Session, job: Job) -> None:
    """Queue ``job`` for when ``session`` commits (dropped if it rolls back instead)."""
    if _JOBS not in session.info:
        event.listen(session, "after_commit", _start)
        event.listen(session, "after_transaction_end", _forget)
        session.info[_JOBS] = []
    session.info[_JOBS].append(job)


def _start(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: the row is not committed yet
        return
    jobs, session.info[_JOBS] = session.info[_JOBS], []
    for job in jobs:
        _pool.submit(job)


def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost one ended without a commit
        session.info[_JOBS] = []


# ------------------------------------------------------------------------------ the job
def run(job: Job) -> None:
    """Install, then record the outcome (and make the version live) in one transaction."""
    staging = job.deps_root / f"{job.version_id}.partial"
    try:
        ok, error, output = pip_install(list(job.lines), staging)
        with job.app.app_context():
            engine = _engine()
            with engine.transaction() as session:
                _unpooled(session)
                went_live = _record(session, engine.box, job, staging, ok, error, output)
            if went_live:  # after the commit, never before: workers would reload the old chain
                engine.bump()
    except Exception:
        log.exception("building version %s failed unexpectedly", job.version_id)
        shutil.rmtree(staging, ignore_errors=True)
        _mark_failed(job, "the build failed unexpectedly (see the server log)")


def _record(
    session: Session,
    box: SecretBox,
    job: Job,
    staging: Path,
    ok: bool,
    error: str | None,
    output: str,
) -> bool:
    version = session.get(ActionVersion, job.version_id)
    if version is None:  # the action was deleted, or the version pruned, while pip ran
        shutil.rmtree(staging, ignore_errors=True)
        return False
    version.build_output = tail(scrub(output, _secret_values(session, box, job.action_id)))
    if not ok:
        shutil.rmtree(staging, ignore_errors=True)
        version.build_status, version.build_error = FAILED, (error or "")[:255]
        return False
    final = job.deps_root / version.id
    staging.rename(final)
    _read_only(final)
    version.deps_dir, version.build_status = version.id, BUILT
    # Locked: a rollback or a deploy of the same action in flight is decided before or after.
    action = session.get_one(Action, job.action_id, with_for_update=True)
    latest = newest(session, action)
    if action.live_version != job.live_before or latest is None or latest.id != version.id:
        return False  # rolled back or deployed again since: the operator's later word stands
    action.live_version = version.number
    action.updated_at = clock.now()
    return True


def _mark_failed(job: Job, error: str) -> None:
    try:
        with job.app.app_context(), _engine().transaction() as session:
            _unpooled(session)
            version = session.get(ActionVersion, job.version_id)
            if version is not None and version.build_status == BUILDING:
                version.build_status, version.build_error = FAILED, error
    except Exception:
        log.exception("could not mark version %s as failed", job.version_id)


def _unpooled(session: Session) -> None:
    """The job's connection is closed when it is done, not pooled: a CLI command empties its
    pool before it exits, and this job runs after that."""
    session.connection().detach()


def _engine() -> ActionsEngine:
    engine: ActionsEngine = current_app.extensions["idp.services"].actions
    return engine


def _secret_values(session: Session, box: SecretBox, action_id: str) -> dict[str, str]:
    rows = session.scalars(select(ActionSecret).where(ActionSecret.action_id == action_id))
    return {row.name: box.decrypt(row.ciphertext).decode() for row in rows}


# ------------------------------------------------------------------------------- pip
def pip_install(lines: list[str], target: Path) -> tuple[bool, str | None, str]:
    """pip-install requirement lines into ``target``: (ok, why not, pip's output). The
    server's own settings (``IDP_*``: a database URL with its password) are not passed on, so
    neither pip nor a package's build script can see them, or print them."""
    shutil.rmtree(target, ignore_errors=True)  # a leftover of an interrupted build
    target.mkdir(parents=True)
    argv = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
            "--progress-bar", "off", "--target", str(target), *lines]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    try:
        # Own session: on a timeout the whole group goes, build backends pip started included.
        proc = subprocess.Popen(  # noqa: S603 (fixed argv; requirement lines validated)
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env, start_new_session=True,
        )  # fmt: skip
    except OSError as exc:
        return False, f"pip could not start: {exc}", ""
    try:
        raw, _ = proc.communicate(timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raw, _ = proc.communicate()
        return False, f"pip did not finish within {PIP_TIMEOUT} s", raw.decode(errors="replace")
    output = raw.decode(errors="replace")
    if proc.returncode != 0:
        return False, f"pip exited with status {proc.returncode}", output
    return True, None, output


def scrub(text: str, secrets: dict[str, str]) -> str:
    """No secret value (of four characters or more), terminal escape or control character."""
    for name, value in secrets.items():
        if len(value) >= 4:
            text = text.replace(value, f"[secret {name}]")
    return _ESCAPES.sub("", text.replace("\r\n", "\n"))


def tail(text: str) -> str:
    """The last ``OUTPUT_BYTES`` of ``text``, cut at a line start where one is near."""
    data = text.encode()
    if len(data) <= OUTPUT_BYTES:
        return text
    cut = data[-OUTPUT_BYTES:].decode(errors="ignore")
    newline = cut.find("\n")
    return cut[newline + 1 :] if 0 <= newline < 200 else cut


def _read_only(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o555 if path.is_dir() else 0o444)
