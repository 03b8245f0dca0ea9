"""A PostgreSQL cluster of the scale bench's own, tuned as an operator would tune a production one.

    .venv/bin/python bench/pgcluster.py start|stop|status [--data /tmp/idp-scale-pg]

The machine's shared PostgreSQL keeps the default ``shared_buffers`` of 128 MB, so a page of
users scattered over a 1.7 GB database is read from the kernel's cache, not PostgreSQL's: the
big database then pays for its size in buffer misses a production server sized for its data
would not. This cluster (``initdb`` and ``pg_ctl`` from ``/usr/lib/postgresql/*/bin``, run as
the ``postgres`` user when this runs as root, which ``initdb`` refuses) keeps its data directory
between runs, so the seeded databases survive, and listens on the first free loopback port from
55432. Its settings are ``SETTINGS`` below, written to ``bench.conf`` in the data directory
(included from ``postgresql.conf``) at every start.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

DEFAULT_DATA = Path("/tmp/idp-scale-pg")
FIRST_PORT = 55432

# A 23 GB, 2-core machine whose largest database (1,000,000 users, 10,000 clients) is 1.7 GB.
# Values and reasons: PostgreSQL's "Resource Consumption" and "Query Planning" chapters and the
# wiki's "Tuning Your PostgreSQL Server".
SETTINGS = {
    # The whole working set in PostgreSQL's own buffers: both scale databases (~1.8 GB) with
    # room to spare. The usual rule is 25 % of RAM; 3 GB is 13 % here, and enough.
    "shared_buffers": "3GB",
    # What the planner may assume the kernel caches on top (about half the RAM): it makes index
    # scans look as cheap as they are once the data is in memory.
    "effective_cache_size": "12GB",
    # SSD-backed storage: a random read costs little more than a sequential one.
    "random_page_cost": "1.1",
    "effective_io_concurrency": "200",
    # Per sort or hash node; the searches' top-N sorts need far less, index builds get more.
    "work_mem": "16MB",
    "maintenance_work_mem": "512MB",
    # The seed's COPY writes ~2 GB of WAL: fewer forced checkpoints while it runs.
    "max_wal_size": "4GB",
    "checkpoint_completion_target": "0.9",
    "wal_buffers": "16MB",
    # Two cores: one parallel worker per query at most, so a query never takes both.
    "max_parallel_workers_per_gather": "1",
    "max_parallel_workers": "2",
    # pg_prewarm's autoprewarm reloads the buffers' contents after a restart, so a cluster
    # stopped after the seed measures warm the next time too.
    "shared_preload_libraries": "'pg_prewarm'",
    "listen_addresses": "'127.0.0.1'",
    "huge_pages": "try",
}


def pg_bindir() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not versions:
        raise SystemExit("needs PostgreSQL's server binaries (initdb, pg_ctl: Debian's postgresql)")
    return Path(versions[-1]).parent


class Cluster:
    """The data directory ``data``, its server started on demand and stopped by ``stop()``."""

    def __init__(self, data: Path = DEFAULT_DATA) -> None:
        self.data = data
        self.bindir = pg_bindir()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.port = 0

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.as_postgres, *argv], capture_output=True, text=True,
                              check=check, timeout=600)  # fmt: skip

    def running_port(self) -> int:
        """The port of this data directory's running server, 0 if none runs."""
        status = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "status", check=False)
        if status.returncode != 0:
            return 0
        lines = (self.data / "postmaster.pid").read_text().splitlines()
        return int(lines[3])  # the pid file's fourth line is the port

    def init(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.data.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.data, "postgres", "postgres")
        self.data.chmod(0o700)
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                  "postgres", "-E", "UTF8", "--locale", "C.UTF-8")  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'bench.conf'  # bench/pgcluster.py's settings\n")

    def write_settings(self) -> None:
        text = "".join(f"{name} = {value}\n" for name, value in SETTINGS.items())
        text += f"port = {self.port}\nunix_socket_directories = '{self.data}'\n"
        (self.data / "bench.conf").write_text("# written by bench/pgcluster.py\n" + text)
        if self.as_postgres:
            shutil.chown(self.data / "bench.conf", "postgres", "postgres")

    def start(self) -> bool:
        """Start the server unless it runs; True when this call started it."""
        self.init()
        self.port = self.running_port()
        if self.port:
            return False
        self.port = free_port(FIRST_PORT)
        self.write_settings()
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.data / "server.log"), "-w", "-t", "120", "start")  # fmt: skip
        return True

    def stop(self) -> None:
        if self.running_port():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                      "stop")  # fmt: skip


def free_port(first: int) -> int:
    for port in range(first, first + 100):
        with socket.socket() as probe:
            # as PostgreSQL binds: a port whose last connections are in TIME_WAIT is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {first}-{first + 99}")


def prewarm(url: str) -> int:
    """Load every table, index and TOAST table of ``url``'s database into shared buffers."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        row = c.execute(
            "SELECT coalesce(sum(pg_prewarm(oid)), 0) FROM pg_class"
            " WHERE relkind IN ('r', 'i', 't', 'm') AND relpersistence = 'p'"
        ).fetchone()
    return int(row[0]) if row else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    cluster = Cluster(args.data)
    if args.action == "start":
        started = cluster.start()
        print(f"{'started' if started else 'already running'}: {cluster.url('DBNAME')}")
    elif args.action == "stop":
        cluster.stop()
    else:
        cluster.port = cluster.running_port()
        print(f"running: {cluster.url('DBNAME')}" if cluster.port else "not running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
