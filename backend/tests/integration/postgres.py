"""A private PostgreSQL server for tests: Debian's ``postgresql`` binaries, a data directory of
its own, a free loopback port, no Unix socket, stopped and removed afterwards.

PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` user (the package
creates it), in a directory made for it (pytest's temp dirs are private to root); as anyone else
it runs as that user under the given directory.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from ispbx_lab.lab import free_port

USER = "ispbx"
START_TIMEOUT = 60
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


class PostgresUnavailable(Exception):
    """This machine cannot run the test server; the message says why (one line)."""


def find_bin() -> Path:
    """The newest ``/usr/lib/postgresql/*/bin`` that has initdb and pg_ctl."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for candidate in reversed(candidates):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise PostgresUnavailable("PostgreSQL is not installed (apt-get install postgresql)")


class PostgresServer:
    """``start()``/``stop()`` may be called again (a test stops it mid-run); ``remove()`` ends."""

    def __init__(self, base: Path) -> None:
        self.bin = find_bin()
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)  # generated per server, never stored
        self._as_root = os.geteuid() == 0
        if self._as_root:
            try:
                self._owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("no 'postgres' user to run PostgreSQL as") from None
            self.root = Path(tempfile.mkdtemp(prefix="ispbx-pg-"))
            os.chown(self.root, self._owner.pw_uid, self._owner.pw_gid)
        else:
            self.root = base / "postgres"
            self.root.mkdir(parents=True)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        try:
            self._initdb()
        except PostgresUnavailable:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self._as_root:
            runuser = shutil.which("runuser", path=SYSTEM_PATH)
            if runuser is None:
                raise PostgresUnavailable("runuser (util-linux) is needed to run it as postgres")
            command = [runuser, "-u", "postgres", "--", *command]
        env = {"PATH": SYSTEM_PATH, "LC_ALL": "C", "PGPASSWORD": self.password}
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, env=env, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresUnavailable(f"{argv[0]}: {exc}") from None
        if check and result.returncode != 0:
            output = " ".join((result.stderr or result.stdout).split())[-400:]
            raise PostgresUnavailable(f"{argv[0]} failed: {output}")
        return result

    def _initdb(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as_root:
            os.chown(pwfile, self._owner.pw_uid, self._owner.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        pwfile.unlink()
        settings = (
            f"port = {self.port}\n"
            "listen_addresses = '127.0.0.1'\n"
            "unix_socket_directories = ''\n"
            # A throwaway server: durability buys nothing here, speed does.
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            "shared_buffers = 32MB\nmax_connections = 50\n"
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(settings)

    def start(self) -> None:
        """Start (again); a failure says why, with the end of the server's log."""
        argv = ["-D", str(self.data), "-l", str(self.log), "-w", "-t", str(START_TIMEOUT)]
        try:
            self._run("pg_ctl", *argv, "start")
        except PostgresUnavailable as exc:
            log = self.log.read_text(errors="replace")[-600:] if self.log.exists() else ""
            raise PostgresUnavailable(f"{exc} {' '.join(log.split())}".strip()) from None

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _client(self, tool: str, *args: str) -> None:
        self._run(tool, "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, *args)

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        self._client("createdb", name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._client("dropdb", "--force", "--if-exists", name)


def start_server(base: Path) -> PostgresServer:
    """A running server, or PostgresUnavailable with the reason (nothing left behind)."""
    server = PostgresServer(base)
    try:
        server.start()
    except PostgresUnavailable:
        server.remove()
        raise
    return server
