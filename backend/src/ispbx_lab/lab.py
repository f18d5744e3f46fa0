"""A real Asterisk 22 for tests, demos and benchmarks.

Asterisk comes from Debian testing (or sid) in a debootstrap chroot that is built once and cached
outside the repository. Each lab instance gets private directories inside that chroot (its own
asterisk.conf, etc, run, log, db) and its own AMI/SIP/HTTP ports, so several labs can run at once.
Asterisk runs in a private mount namespace (``unshare -m``) with ``/proc`` and ``/dev`` mounted, so
no mount outlives it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
DEPLOY_DIR = REPO_ROOT / "deploy" / "asterisk"
SAMPLE_PJSIP = REPO_ROOT / "backend" / "src" / "ispbx" / "config" / "pjsip.sample.conf"
SUITES = ("testing", "sid")
AMI_USERNAME = "ispbx"
AMI_SECRET = "ispbx-lab-secret"  # lab/test credential, see deploy/asterisk/manager.conf
ARI_USERNAME = "bench"
ARI_PASSWORD = "bench-lab-secret"  # lab/test credential, see deploy/asterisk/ari.conf
BOOT_TIMEOUT = 90.0


class LabUnavailable(RuntimeError):
    """The lab cannot be provisioned or started here; the message is a one-line reason."""


def cache_dir() -> Path:
    configured = os.environ.get("ISPBX_LAB_CACHE")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/cache/ispbx-lab")
    return Path.home() / ".cache" / "ispbx-lab"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _asterisk_ok(root: Path) -> bool:
    return (root / "usr" / "sbin" / "asterisk").exists() and (root / "etc" / "passwd").exists()


def ensure_rootfs(log: Path | None = None) -> Path:
    """Return the cached chroot with Asterisk, building it once (safe when two runs race)."""
    base = cache_dir()
    root = base / "rootfs"
    if _asterisk_ok(root):
        return root
    if os.geteuid() != 0:
        raise LabUnavailable("the Asterisk lab needs root (debootstrap, chroot, unshare)")
    if shutil.which("debootstrap") is None:
        raise LabUnavailable("debootstrap is not installed (apt-get install debootstrap)")
    with _file_lock(base / "rootfs.lock"):
        if _asterisk_ok(root):
            return root
        # The first run is otherwise silent for a minute.
        print(f"building the Asterisk lab (once, ~1 min) in {root}…", file=sys.stderr, flush=True)
        errors = [_debootstrap(base, suite, log) for suite in SUITES]
        if _asterisk_ok(root):
            return root
        raise LabUnavailable("debootstrap failed: " + "; ".join(e for e in errors if e))


def _debootstrap(base: Path, suite: str, log: Path | None) -> str:
    root = base / "rootfs"
    if _asterisk_ok(root):
        return ""
    work = base / f"rootfs.{suite}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    command = [
        "debootstrap",
        "--variant=minbase",
        "--include=asterisk,asterisk-modules",
        suite,
        str(work),
    ]
    mirror = os.environ.get("ISPBX_LAB_MIRROR")
    if mirror:
        command.append(mirror)
    log_path = log or base / f"debootstrap-{suite}.log"
    with log_path.open("w") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0 or not _asterisk_ok(work):
        shutil.rmtree(work, ignore_errors=True)
        return f"{suite}: exit {result.returncode}, see {log_path}"
    work.rename(root)
    return ""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _owner_ids(root: Path) -> tuple[int, int]:
    for line in (root / "etc" / "passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == "asterisk":
            return int(parts[2]), int(parts[3])
    raise LabUnavailable("the chroot has no asterisk user")


def _module_dir(root: Path) -> str:
    for candidate in sorted((root / "usr" / "lib").glob("*/asterisk/modules")):
        return "/" + str(candidate.relative_to(root))
    return "/usr/lib/asterisk/modules"


@dataclass
class Lab:
    """One Asterisk instance in the cached chroot."""

    name: str = "dev"
    ami_port: int = 5038
    sip_port: int = 5060
    http_port: int = 8088
    pjsip_files: Mapping[str, str] = field(default_factory=dict)
    root: Path = field(default_factory=lambda: cache_dir() / "rootfs")

    @property
    def inside(self) -> str:
        """The instance directory as Asterisk (inside the chroot) sees it."""
        return f"/ispbx-lab/{self.name}"

    @property
    def home(self) -> Path:
        return self.root / "ispbx-lab" / self.name

    @property
    def etc(self) -> Path:
        return self.home / "etc"

    @property
    def pjsip_conf(self) -> Path:
        return self.etc / "pjsip.conf"

    @property
    def pid_file(self) -> Path:
        return self.home / "asterisk.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "asterisk.out"

    # -- configuration -------------------------------------------------------------------------

    def _render(self, text: str) -> str:
        text = re.sub(r"(?m)^(port\s*=\s*)5038\s*$", rf"\g<1>{self.ami_port}", text)
        text = re.sub(r"(?m)^(bindport\s*=\s*)8088\s*$", rf"\g<1>{self.http_port}", text)
        return text.replace("127.0.0.1:5060", f"127.0.0.1:{self.sip_port}")

    def _asterisk_conf(self) -> str:
        return (
            "[directories]\n"
            f"astcachedir => {self.inside}/cache\n"
            f"astetcdir => {self.inside}/etc\n"
            f"astmoddir => {_module_dir(self.root)}\n"
            "astvarlibdir => /var/lib/asterisk\n"
            f"astdbdir => {self.inside}/db\n"
            "astkeydir => /var/lib/asterisk\n"
            "astdatadir => /usr/share/asterisk\n"
            "astagidir => /usr/share/asterisk/agi-bin\n"
            f"astspooldir => {self.inside}/spool\n"
            f"astrundir => {self.inside}/run\n"
            f"astlogdir => {self.inside}/log\n"
            "astsbindir => /usr/sbin\n"
            "[options]\nverbose = 0\ndebug = 0\n"
        )

    def write_config(self) -> None:
        """(Re)write every config file of this instance; pjsip files come from ``pjsip_files``."""
        uid, gid = _owner_ids(self.root)
        for sub in ("etc", "cache", "db", "spool", "run", "log"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
            os.chown(self.home / sub, uid, gid)
        for source in DEPLOY_DIR.glob("*.conf"):
            if source.name != "asterisk.conf":
                (self.etc / source.name).write_text(self._render(source.read_text()))
        (self.etc / "asterisk.conf").write_text(self._asterisk_conf())
        files = dict(self.pjsip_files) or {"pjsip.conf": SAMPLE_PJSIP.read_text()}
        self.write_pjsip(files)

    def write_pjsip(self, files: Mapping[str, str]) -> None:
        """Write pjsip files (names relative to etc/, sub-directories allowed); not reloaded."""
        uid, gid = _owner_ids(self.root)
        for name, text in files.items():
            target = self.etc / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(self._render(text))
            os.chown(target, uid, gid)

    # -- process -------------------------------------------------------------------------------

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        # The command line is briefly empty while unshare/chroot exec the next program.
        return pid if not cmdline or self.inside.encode() in cmdline else None

    def start(self, timeout: float = BOOT_TIMEOUT) -> None:
        """Start Asterisk and return once it is fully booted with AMI accepting connections."""
        with _file_lock(self._lock_path):
            if self.running_pid() is not None:
                raise LabUnavailable(f"lab {self.name!r} is already running")
            self.write_config()
            self._spawn()
            self.wait_booted(timeout)

    def _spawn(self) -> None:
        root = str(self.root)
        script = (
            'mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && '
            'exec chroot "$1" /usr/sbin/asterisk -f -C "$2/etc/asterisk.conf" '
            "-U asterisk -G asterisk"
        )
        command = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"]
        with self.log_file.open("ab") as out:
            process = subprocess.Popen(
                [*command, root, self.inside],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{process.pid}\n")

    def wait_booted(self, timeout: float = BOOT_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running_pid() is None:
                raise LabUnavailable(f"Asterisk exited during boot; see {self.log_file}")
            result = self.cli("core waitfullybooted", timeout=10, check=False)
            if result.returncode == 0 and "fully booted" in result.stdout and self._ami_open():
                return
            time.sleep(0.2)
        raise LabUnavailable(f"Asterisk did not boot within {timeout:.0f} s; see {self.log_file}")

    def _ami_open(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.ami_port), timeout=1),
        ):
            return True
        return False

    def cli(
        self, command: str, *, timeout: float = 20, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run an Asterisk CLI command on this instance (``asterisk -rx``)."""
        conf = f"{self.inside}/etc/asterisk.conf"
        result = subprocess.run(
            ["chroot", str(self.root), "/usr/sbin/asterisk", "-C", conf, "-rx", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise LabUnavailable(f"asterisk -rx {command!r} failed: {result.stderr.strip()}")
        return result

    def reload_pjsip(self) -> str:
        return self.cli("module reload res_pjsip.so").stdout

    def stop(self, timeout: float = 20.0) -> None:
        """Stop Asterisk cleanly (``core stop now``), killing it if it does not go."""
        pid = self.running_pid()
        if pid is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.cli("core stop now", timeout=10, check=False)
        if not _wait_gone(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _wait_gone(pid, 5)
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """Stop Asterisk abruptly (SIGKILL), as a crash would."""
        pid = self.running_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _wait_gone(pid, 5)

    def pause(self) -> None:
        """Freeze Asterisk (SIGSTOP to its whole process group), as a hung server would be: its
        sockets stay open, the kernel still accepts connections, nothing answers."""
        pid = self.running_pid()
        if pid is None:
            raise LabUnavailable(f"lab {self.name!r} is not running")
        os.killpg(pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused Asterisk run again (SIGCONT)."""
        pid = self.running_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGCONT)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
        self._lock_path.unlink(missing_ok=True)

    @property
    def _lock_path(self) -> Path:
        return self.root / "ispbx-lab" / f"{self.name}.lock"

    # -- convenience ---------------------------------------------------------------------------

    def service_env(self) -> dict[str, str]:
        """ISPBX_* settings that point the service at this lab."""
        return {
            "ISPBX_AMI_HOST": "127.0.0.1",
            "ISPBX_AMI_PORT": str(self.ami_port),
            "ISPBX_AMI_USERNAME": AMI_USERNAME,
            "ISPBX_AMI_SECRET": AMI_SECRET,
            "ISPBX_PJSIP_CONF": str(self.pjsip_conf),
        }


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.05)
    return False


def generate_pjsip(count: int, *, first: int = 1000, names: Mapping[int, str] | None = None) -> str:
    """A pjsip.conf with ``count`` extensions (endpoint + auth + aor each) on one transport."""
    lines = [
        "[transport-udp]\ntype = transport\nprotocol = udp\nbind = 127.0.0.1:5060\n",
        "[ep](!)\ntype = endpoint\ntransport = transport-udp\ncontext = from-internal\n"
        "disallow = all\nallow = ulaw\n",
        "[au](!)\ntype = auth\nauth_type = userpass\n",
        "[ao](!)\ntype = aor\nmax_contacts = 1\nremove_existing = yes\n",
    ]
    for number in range(first, first + count):
        name = (names or {}).get(number, f"User {number}")
        lines.append(
            f'[{number}](ep)\nauth = {number}\naors = {number}\ncallerid = "{name}" <{number}>\n'
            f"[{number}](au)\nusername = {number}\npassword = pw{number}\n"
            f"[{number}](ao)\n"
        )
    return "\n".join(lines)
