"""``idp serve`` keeps glibc to one malloc arena in its workers (MALLOC_ARENA_MAX=1): with an
arena per thread, each thread of a worker kept the 19 MiB of the last argon2id hash it ran
(bench/memory.py: a worker with two threads stayed 20 MB larger; idp.identity.service)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.operations.served import SERVERS, served


@pytest.mark.parametrize("kind", SERVERS)
def test_workers_run_with_one_malloc_arena(tmp_path: Path, kind: str) -> None:
    with served(tmp_path / "instance", "--workers", "1", server=kind) as server:
        pid = server.proc.pid
        (worker,) = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
        assert b"MALLOC_ARENA_MAX=1" in environ
