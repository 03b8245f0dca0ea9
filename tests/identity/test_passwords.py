"""argon2id hashes run one at a time per process (idp.identity.service.Passwords): each holds
ARGON2_MEMORY_KIB, which glibc keeps per thread once used, so a worker's threads hashing at once
would each keep their own copy for good."""

from __future__ import annotations

import threading
import time
from typing import Any

from idp.identity.service import Passwords


class _Hasher:
    """Stands in for argon2's hasher: records how many calls overlap."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self._count = threading.Lock()

    def _work(self, result: Any) -> Any:
        with self._count:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.02)  # argon2 releases the GIL: another thread could start meanwhile
        with self._count:
            self.running -= 1
        return result

    def hash(self, password: str) -> str:
        return str(self._work(f"hashed {password}"))

    def verify(self, stored: str, password: str) -> bool:
        return bool(self._work(stored == f"hashed {password}"))


def test_hashes_and_verifications_never_overlap_within_a_process() -> None:
    hasher = _Hasher()
    passwords = Passwords(hasher, "hashed dummy")  # type: ignore[arg-type]
    calls = [lambda: passwords.hash("pw"), lambda: passwords.verify("hashed pw", "pw")] * 4
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert hasher.most == 1
    assert passwords.verify("hashed pw", "pw") and not passwords.verify(None, "pw")
