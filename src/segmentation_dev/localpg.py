"""A project-local PostgreSQL cluster for development, the demo and the tests.

Used only when no server is configured (no PGHOST in the environment). The cluster lives
under `.local/pg`, listens on 127.0.0.1 on a non-default port, and uses password
authentication with a generated password kept in a git-ignored file. PostgreSQL refuses
to run as root, so when invoked as root every server command runs as an unprivileged OS
user (`postgres` when it exists).
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from segmentation import settings
from segmentation.errors import DatabaseError, PostgresNotFoundError

DEFAULT_PORT = int(str(settings.default("SEGMENTS_PG_PORT")))
SUPERUSER = "segments"
DEFAULT_DATABASE = "segments"
FALLBACK_OS_USER = "segmentspg"

# A development cluster trades crash safety for speed: tests rebuild everything anyway.
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "shared_buffers": "'512MB'",
    "work_mem": "'64MB'",
    "maintenance_work_mem": "'512MB'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "timezone": "'UTC'",
    "jit": "off",
}
# Settings measured for the pipeline's workload (docs/performance.md), passed on every start
# too, so a cluster initialised before they were chosen gets them at its next start. JIT
# compiles the expression-heavy staging and one-pass queries for longer than they run:
# int_crm__rejected_rows took 114 s with JIT (113 s of it compiling) and 1.8 s without.
TUNED_SETTINGS = {"jit": "off"}

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found.\n"
    "Install them with your package manager, for example:\n"
    "  Debian/Ubuntu:  sudo apt-get install postgresql-15\n"
    "  Fedora/RHEL:    sudo dnf install postgresql15-server\n"
    "  macOS:          brew install postgresql@15\n"
    "or point the project at an existing server with PGHOST, PGPORT, PGUSER, PGPASSWORD\n"
    "and PGDATABASE. SEGMENTS_PG_BINDIR can name the binaries' directory directly."
)


@dataclass(frozen=True)
class Connection:
    host: str
    port: int
    user: str
    password: str
    database: str

    def env(self) -> dict[str, str]:
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGDATABASE": self.database,
        }

    def exports(self) -> str:
        return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in self.env().items())


class LocalCluster:
    def __init__(self, base: Path | None = None, port: int | None = None) -> None:
        self.base = base or self._default_base()
        self.data = self.base / "data"
        self.run_dir = self.base / "run"
        self.log = self.base / "postgres.log"
        self.credentials = self.base / "credentials"
        self.port = port or int(settings.env("SEGMENTS_PG_PORT") or DEFAULT_PORT)

    @classmethod
    def _default_base(cls) -> Path:
        """`.local/pg`, unless the server's OS user could not reach it (a checkout under a
        private home directory, say): then a per-checkout folder under /var/tmp."""
        base = settings.local_dir() / "pg"
        user = cls.os_user() if os.geteuid() == 0 else None
        if user is None or (base / "data").exists():
            return base
        try:
            probe = subprocess.run(
                ["runuser", "-u", user, "--", "test", "-x", str(settings.project_dir())],
                capture_output=True,
            )
        except OSError:  # no runuser: starting fails later with a clearer message
            return base
        if probe.returncode == 0:
            return base
        digest = hashlib.sha1(str(settings.project_dir()).encode()).hexdigest()[:10]
        return Path("/var/tmp") / f"segments-pg-{digest}"

    # --- locating binaries and the OS user -------------------------------------------

    @staticmethod
    def bindir() -> Path:
        candidates: list[str] = []
        if bindir := settings.env("SEGMENTS_PG_BINDIR"):
            candidates.append(bindir)
        pg_config = shutil.which("pg_config")
        if pg_config:
            try:
                out = subprocess.run(
                    [pg_config, "--bindir"], capture_output=True, text=True, check=True
                )
                candidates.append(out.stdout.strip())
            except (subprocess.CalledProcessError, OSError):
                pass
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(str(Path(on_path).parent))
        # Debian keeps server binaries off PATH; prefer the newest major version.
        candidates += sorted(
            glob.glob("/usr/lib/postgresql/*/bin"),
            key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
            reverse=True,
        )
        for cand in candidates:
            path = Path(cand)
            if all((path / exe).exists() for exe in ("initdb", "pg_ctl", "postgres")):
                return path
        raise PostgresNotFoundError(INSTALL_HINT)

    @staticmethod
    def os_user() -> str | None:
        """The unprivileged user to run the server as, or None to run as ourselves."""
        if os.geteuid() != 0:
            return None
        wanted = settings.env("SEGMENTS_PG_OS_USER")
        for name in filter(None, [wanted, "postgres", FALLBACK_OS_USER]):
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                continue
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                FALLBACK_OS_USER,
            ],
            check=True,
        )
        return FALLBACK_OS_USER

    def _cmd(self, argv: list[str]) -> list[str]:
        user = self.os_user()
        return ["runuser", "-u", user, "--", *argv] if user else argv

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._cmd(argv), capture_output=True, text=True)

    # --- lifecycle ---------------------------------------------------------------------

    def is_initialised(self) -> bool:
        return (self.data / "PG_VERSION").is_file()

    def is_running(self) -> bool:
        if not self.is_initialised():
            return False
        res = self._run([str(self.bindir() / "pg_ctl"), "-D", str(self.data), "status"])
        return res.returncode == 0

    def _password(self) -> str:
        return self.credentials.read_text().strip()

    def connection(self) -> Connection:
        return Connection("127.0.0.1", self.port, SUPERUSER, self._password(), DEFAULT_DATABASE)

    def _prepare_dirs(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(exist_ok=True)
        user = self.os_user()
        if user:
            pw = pwd.getpwnam(user)
            for path in (self.base, self.run_dir):
                os.chown(path, pw.pw_uid, pw.pw_gid)
            if self.data.exists():
                subprocess.run(
                    ["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", str(self.data)], check=True
                )
            probe = subprocess.run(["runuser", "-u", user, "--", "test", "-w", str(self.base)])
            if probe.returncode != 0:
                raise DatabaseError(
                    f"The OS user '{user}' cannot write {self.base}: a parent directory is "
                    "not traversable by it. Clone the project somewhere world-readable (for "
                    "example under /work or /srv), or set PGHOST to use an existing server."
                )

    def _initdb(self) -> None:
        self._prepare_dirs()
        if not self.credentials.exists():
            self.credentials.write_text(secrets.token_urlsafe(24) + "\n")
            self.credentials.chmod(0o600)
        pwfile = self.run_dir / "initdb.pw"
        pwfile.write_text(self._password() + "\n")
        user = self.os_user()
        if user:
            pw = pwd.getpwnam(user)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        try:
            argv = [
                str(self.bindir() / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
            ]
            res = self._run([*argv, "--locale=C.UTF-8"])
            if res.returncode != 0 and "locale" in (res.stderr + res.stdout).lower():
                shutil.rmtree(self.data, ignore_errors=True)
                res = self._run([*argv, "--no-locale"])
            if res.returncode != 0:
                raise DatabaseError(f"initdb failed:\n{res.stdout}\n{res.stderr}")
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.data / "postgresql.conf"
        settings = dict(
            SERVER_SETTINGS, port=str(self.port), unix_socket_directories=f"'{self.run_dir}'"
        )
        with conf.open("a") as fh:
            fh.write("\n# segments local cluster\n")
            for key, value in settings.items():
                fh.write(f"{key} = {value}\n")

    def _port_in_use(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def up(self) -> Connection:
        """Start the cluster (initialising it the first time). Already running is fine."""
        self.bindir()  # fail with the install hint before touching the disk
        if not self.is_initialised():
            self._initdb()
        if self.is_running():
            return self.connection()
        if self._port_in_use():
            raise DatabaseError(
                f"Port {self.port} on 127.0.0.1 is taken by another process. Set "
                "SEGMENTS_PG_PORT to a free port and run `segments db up` again."
            )
        self._prepare_dirs()
        res = self._run(
            [
                str(self.bindir() / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "-o",
                " ".join(f"-c {name}={value}" for name, value in TUNED_SETTINGS.items()),
                "start",
            ]
        )
        if res.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise DatabaseError(f"PostgreSQL did not start:\n{res.stderr}\n{tail}")
        conn = self.connection()
        self._ensure_database(conn)
        return conn

    def _ensure_database(self, conn: Connection) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(
                    host=conn.host,
                    port=conn.port,
                    user=conn.user,
                    password=conn.password,
                    dbname="postgres",
                    autocommit=True,
                ) as pg:
                    exists = pg.execute(
                        "select 1 from pg_database where datname = %s", (conn.database,)
                    ).fetchone()
                    if not exists:
                        pg.execute(f'create database "{conn.database}"')
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def down(self) -> bool:
        """Stop the cluster. Returns False when it was not running."""
        if not self.is_running():
            return False
        res = self._run(
            [str(self.bindir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
        )
        if res.returncode != 0:
            raise DatabaseError(f"PostgreSQL did not stop:\n{res.stderr}")
        return True


def server_configured() -> bool:
    """True when the environment points at a server other than the local cluster."""
    host = os.environ.get("PGHOST")
    if not host:
        return False
    local = LocalCluster()
    port = os.environ.get("PGPORT", "5432")
    return not (host in ("127.0.0.1", "localhost") and port == str(local.port))


def configured_connection() -> Connection:
    env = os.environ
    return Connection(
        host=env["PGHOST"],
        port=int(env.get("PGPORT", "5432")),
        user=env.get("PGUSER", pwd.getpwuid(os.getuid()).pw_name),
        password=env.get("PGPASSWORD", ""),
        database=env.get("PGDATABASE", DEFAULT_DATABASE),
    )


def ensure_server() -> Connection:
    """The connection to use: the configured server, or the local cluster, started."""
    if server_configured():
        return configured_connection()
    conn = LocalCluster().up()
    # Keep a database chosen by the caller (tests use their own).
    database = os.environ.get("PGDATABASE") if os.environ.get("PGHOST") else None
    return Connection(conn.host, conn.port, conn.user, conn.password, database or conn.database)
