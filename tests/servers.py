"""Real servers on loopback for tests: a private Dovecot (IMAP) and an aiosmtpd sink (SMTP)."""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import imapclient
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"
CLIENT_TIMEOUT = 10.0
START_TIMEOUT = 10.0


class TlsMaterial(NamedTuple):
    """Paths of a throwaway CA certificate and a server certificate/key signed by it."""

    ca_file: Path
    cert_file: Path
    key_file: Path


# --------------------------------------------------------------------------- TLS


def _openssl(*args: str, cwd: Path) -> None:
    """Run one openssl command in `cwd`, raising with its stderr on failure."""
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


_SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def make_tls_material(directory: str | os.PathLike[str]) -> TlsMaterial:
    """Create a CA and a localhost/127.0.0.1 server certificate in `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", *_EC_KEY, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=mailrelay test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    _openssl("req", "-new", *_EC_KEY, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost", cwd=directory)
    (directory / "server.ext").write_text(_SERVER_EXTENSIONS)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "server.ext",
             "-out", "server.pem", cwd=directory)
    return TlsMaterial(directory / "ca.pem", directory / "server.pem", directory / "server.key")


def client_ssl_context(ca_file: str | os.PathLike[str]) -> ssl.SSLContext:
    """A verifying client context that trusts only the test CA."""
    return ssl.create_default_context(cafile=str(ca_file))


def server_ssl_context(tls: TlsMaterial) -> ssl.SSLContext:
    """A server context presenting the test server certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return context


# --------------------------------------------------------------------------- ports


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that the OS reports free right now."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for_port(port: int, timeout: float) -> bool:
    """Whether 127.0.0.1:`port` accepts a connection within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


# --------------------------------------------------------------------------- Dovecot


def dovecot_binary() -> str | None:
    """Path of the dovecot master binary, or None when it is not installed."""
    found = shutil.which("dovecot")
    if found:
        return found
    return "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None


def _doveadm_binary() -> str:
    """Path of doveadm (on Debian beside dovecot, sometimes outside PATH)."""
    return shutil.which("doveadm") or "/usr/bin/doveadm"


_DOVECOT_CONFIG = """\
# Private test instance; written by tests/servers.py.
protocols = imap
listen = {host}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = yes
ssl_cert = <{cert_file}
ssl_key = <{key_file}
auth_mechanisms = plain login
disable_plaintext_auth = no
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~/Maildir:LAYOUT=fs
mail_fsync = never
auth_failure_delay = 0
mail_max_userip_connections = 100
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {host}
    port = {plain_port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


class Dovecot:
    """One private Dovecot on 127.0.0.1 where any username logs in with `password`."""

    host = HOST

    def __init__(self, tls: TlsMaterial | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mailrelay-dovecot-"))
        self.root.chmod(0o755)  # the mail user (dovecot) must reach its home below
        self.tls = tls or make_tls_material(self.root / "tls")
        self.ca_file = self.tls.ca_file
        self.password = secrets.token_urlsafe(16)
        self.config_file = self.root / "dovecot.conf"
        self.log_file = self.root / "dovecot.log"
        self.tls_port = 0
        self.plain_port = 0
        self._started = False

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, attempts: int = 3) -> None:
        """Start Dovecot on two fresh ports, retrying when a port was taken meanwhile."""
        self._prepare_directories()
        for _ in range(attempts):
            self.tls_port, self.plain_port = free_ports(2)
            self._write_config()
            if self._try_start():
                self._started = True
                return
        tail = self.log_tail()
        self._cleanup_files()
        raise RuntimeError(f"Dovecot did not start after {attempts} attempts; log tail:\n{tail}")

    def stop(self) -> None:
        """Stop the instance (doveadm, else the master pid) and remove its files."""
        if self._started:
            self._stop_master()
            self._started = False
        self._cleanup_files()

    def log_tail(self, lines: int = 20) -> str:
        """The last `lines` lines of the Dovecot log (empty if none was written)."""
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def _prepare_directories(self) -> None:
        """Create the state directory and the mail users' home root."""
        mail_user = pwd.getpwnam("dovecot")
        (self.root / "state").mkdir(exist_ok=True)
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        os.chown(home, mail_user.pw_uid, mail_user.pw_gid)

    def _write_config(self) -> None:
        """Write the config file for the current ports."""
        mail_user = pwd.getpwnam("dovecot")
        self.config_file.write_text(_DOVECOT_CONFIG.format(
            host=HOST, root=self.root, cert_file=self.tls.cert_file, key_file=self.tls.key_file,
            uid=mail_user.pw_uid, gid=mail_user.pw_gid, password=self.password,
            plain_port=self.plain_port, tls_port=self.tls_port))

    def _try_start(self) -> bool:
        """Launch the master; True once both listeners accept connections."""
        # Not capture_output: the daemon inherits the pipes and run() would wait on them.
        with self.log_file.open("a") as log:
            result = subprocess.run([dovecot_binary() or "dovecot", "-c", str(self.config_file)],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        if result.returncode != 0:
            return False
        if wait_for_port(self.tls_port, START_TIMEOUT) and wait_for_port(self.plain_port, 1.0):
            return True
        self._stop_master()
        return False

    def _master_pid(self) -> int | None:
        """The master's pid from base_dir, if it wrote one."""
        try:
            return int((self.root / "run" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def _stop_master(self) -> None:
        """Ask doveadm to stop the master (it waits, ~2 s); else kill its process group."""
        pid = self._master_pid()
        try:
            subprocess.run([_doveadm_binary(), "-c", str(self.config_file), "stop"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10, check=False)
        except subprocess.TimeoutExpired:
            pass
        if pid is not None and not _wait_gone(pid, 10.0):
            _kill_group(pid)

    def _cleanup_files(self) -> None:
        """Remove the instance's temporary directory."""
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ clients

    def client(self, username: str, tls: bool = True) -> imapclient.IMAPClient:
        """A logged-in IMAPClient: implicit TLS verified against the CA, or plain."""
        if tls:
            client = imapclient.IMAPClient(
                self.host, port=self.tls_port, ssl=True,
                ssl_context=client_ssl_context(self.ca_file), timeout=CLIENT_TIMEOUT)
        else:
            client = imapclient.IMAPClient(
                self.host, port=self.plain_port, ssl=False, timeout=CLIENT_TIMEOUT)
        try:
            client.login(username, self.password)
        except BaseException:
            client.shutdown()
            raise
        return client

    def create_mailbox(self, username: str, name: str) -> None:
        """Create mailbox `name` (nested names use '/') unless it exists."""
        with self.client(username) as client:
            if not client.folder_exists(name):
                client.create_folder(name)

    def append(self, username: str, mailbox: str, data: bytes,
               flags: tuple[str | bytes, ...] = ()) -> int:
        """Append one raw message (creating the mailbox if needed); returns its UID."""
        with self.client(username) as client:
            if not client.folder_exists(mailbox):
                client.create_folder(mailbox)
            response = client.append(mailbox, data, flags=flags)
        match = re.search(rb"APPENDUID \d+ (\d+)", response)
        if match is None:
            raise RuntimeError(f"no APPENDUID in {response!r}")
        return int(match.group(1))

    def messages(self, username: str, mailbox: str) -> list[bytes]:
        """Raw bytes of every message in `mailbox` in UID order ([] if it does not exist)."""
        with self.client(username) as client:
            if not client.folder_exists(mailbox):
                return []
            client.select_folder(mailbox, readonly=True)
            fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]"])
        return [fetched[uid][b"BODY[]"] for uid in sorted(fetched)]

    def mailboxes(self, username: str) -> list[str]:
        """Names of all mailboxes of `username`, sorted."""
        with self.client(username) as client:
            return sorted(name for _flags, _delimiter, name in client.list_folders())


def _kill_group(pid: int) -> None:
    """SIGKILL the daemonised master `pid` and its children (its own process group)."""
    try:
        if os.getpgid(pid) == pid != os.getpgid(0):
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _wait_gone(pid, 2.0)


def _wait_gone(pid: int, timeout: float) -> bool:
    """Whether process `pid` has exited within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


# --------------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class Received:
    """One envelope the SMTP sink accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes


@dataclass(frozen=True)
class Rejection:
    """How the sink refuses a message: SMTP code and the command it refuses."""

    code: int
    stage: str  # "mail", "rcpt" or "data"; "drop": take the message, then close without a reply

    @property
    def reply(self) -> str:
        """The SMTP reply line for this rejection."""
        enhanced = "4.3.0" if 400 <= self.code < 500 else "5.7.1"
        return f"{self.code} {enhanced} Rejected by test sink"


class _SinkHandler:
    """aiosmtpd handler: records accepted envelopes, refuses the next N when told to."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.received: list[Received] = []
        self.pending: list[Rejection] = []

    def take_rejection(self) -> Rejection | None:
        """The rejection for the transaction now starting, if one is queued."""
        with self.lock:
            return self.pending.pop(0) if self.pending else None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        """Decide once per transaction whether to refuse it."""
        envelope.rejection = self.take_rejection()
        if envelope.rejection and envelope.rejection.stage == "mail":
            return envelope.rejection.reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        """Accept the recipient unless this transaction is refused at RCPT."""
        rejection = getattr(envelope, "rejection", None)
        if rejection and rejection.stage == "rcpt":
            return rejection.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        """Record the message unless this transaction is refused at DATA."""
        rejection = getattr(envelope, "rejection", None)
        if rejection and rejection.stage == "data":
            return rejection.reply
        record = Received(envelope.mail_from, tuple(envelope.rcpt_tos),
                          bytes(envelope.original_content))
        with self.lock:
            self.received.append(record)
            self.lock.notify_all()
        if rejection and rejection.stage == "drop":  # the client never learns it was accepted
            server.transport.abort()
        return "250 OK"


class _PortZeroController(Controller):
    """A Controller bound to an OS-chosen port, which it reads back from the socket."""

    def _trigger_server(self) -> None:
        """Learn the real port before the base class connects to it."""
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()

    def factory(self):
        """Build the SMTP server, muting aiosmtpd's warning about AUTH without TLS."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
            return super().factory()


class SmtpSink:
    """An SMTP server on 127.0.0.1 that records what it accepts.

    `tls` with implicit_tls=False offers STARTTLS; with implicit_tls=True the
    whole connection is TLS. `auth=(username, password)` requires AUTH before
    MAIL, and with STARTTLS offered only after STARTTLS.
    """

    host = HOST

    def __init__(self, *, tls: TlsMaterial | None = None, implicit_tls: bool = False,
                 auth: tuple[str, str] | None = None) -> None:
        if implicit_tls and tls is None:
            raise ValueError("implicit_tls needs tls material")
        self._handler = _SinkHandler()
        self._controller = _PortZeroController(
            self._handler, hostname=HOST, port=0, server_hostname="sink.test",
            **self._tls_options(tls, implicit_tls),
            **self._auth_options(auth, starttls=tls is not None and not implicit_tls))
        self.port = 0

    @staticmethod
    def _tls_options(tls: TlsMaterial | None, implicit_tls: bool) -> dict:
        """Controller keywords for no TLS, STARTTLS, or implicit TLS."""
        if tls is None:
            return {}
        if implicit_tls:
            return {"ssl_context": server_ssl_context(tls)}
        return {"tls_context": server_ssl_context(tls), "require_starttls": False}

    @staticmethod
    def _auth_options(auth: tuple[str, str] | None, starttls: bool) -> dict:
        """Controller keywords that require AUTH with exactly `auth` (after STARTTLS if offered)."""
        if auth is None:
            return {}
        expected = LoginPassword(auth[0].encode(), auth[1].encode())

        def authenticator(server, session, envelope, mechanism, auth_data):
            return AuthResult(success=auth_data == expected, handled=False)

        # aiosmtpd counts only STARTTLS as TLS, so implicit TLS must not "require" it.
        return {"authenticator": authenticator, "auth_required": True,
                "auth_require_tls": starttls}

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start serving; `port` is known afterwards."""
        self._controller.start()
        self.port = self._controller.port

    def stop(self) -> None:
        """Stop serving (safe to call twice)."""
        if self._controller._thread is not None:
            self._controller.stop()

    @property
    def received(self) -> list[Received]:
        """A snapshot of the accepted envelopes, oldest first."""
        with self._handler.lock:
            return list(self._handler.received)

    def reject_next(self, count: int = 1, code: int = 451, stage: str = "data") -> None:
        """Refuse the next `count` transactions with `code` at MAIL, RCPT or DATA."""
        if stage not in ("mail", "rcpt", "data", "drop"):
            raise ValueError(f"unknown stage {stage!r}")
        with self._handler.lock:
            self._handler.pending.extend([Rejection(code, stage)] * count)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Wait until at least `count` envelopes arrived; returns them (raises on timeout)."""
        with self._handler.lock:
            if not self._handler.lock.wait_for(lambda: len(self._handler.received) >= count,
                                               timeout):
                raise TimeoutError(f"sink got {len(self._handler.received)} of {count} mails")
            return list(self._handler.received)


class CuttingProxy:
    """A TCP proxy to a server for injecting network faults. It drops its first `cut_connections`
    connections once the server has sent `cut_after` bytes through them (a connection lost mid-response);
    `drop_all()` closes every open connection; `freeze()` makes the open ones go silent, as a dead
    NAT or a pulled cable does, while new connections work. TLS passes through untouched, so the
    client still verifies the server's certificate."""

    def __init__(self, port: int, cut_after: int | None = None, cut_connections: int = 1) -> None:
        self.target = port
        self.cut_after = cut_after
        self.cuts_left = cut_connections if cut_after is not None else 0
        self.cuts = 0
        self.connections = 0
        self.refusing = False
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._open: list[tuple[socket.socket, socket.socket, threading.Event]] = []

    def __enter__(self) -> CuttingProxy:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def drop_all(self) -> None:
        for client, server, _ in list(self._open):
            for sock in (client, server):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def refuse(self) -> None:
        """Cut every open connection and refuse new ones until `admit()`: the client's network is gone."""
        self.refusing = True
        self.drop_all()

    def admit(self) -> None:
        self.refusing = False

    def freeze(self) -> None:
        for _, _, frozen in list(self._open):
            frozen.set()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            if self.refusing:
                client.close()
                continue
            self.connections += 1
            limit = self.cut_after if self.cuts_left > 0 else None
            self.cuts_left -= 1
            thread = threading.Thread(target=self._pipe, args=(client, limit), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _pipe(self, client: socket.socket, limit: int | None) -> None:
        import selectors

        server = socket.create_connection((HOST, self.target), timeout=5)
        frozen = threading.Event()
        entry = (client, server, frozen)
        self._open.append(entry)
        sent_to_client = 0
        try:
            with client, server, selectors.DefaultSelector() as selector:
                selector.register(client, selectors.EVENT_READ, server)
                selector.register(server, selectors.EVENT_READ, client)
                while not self._stopping.is_set():
                    for key, _ in selector.select(timeout=0.2):
                        try:
                            data = key.fileobj.recv(65536)
                        except OSError:
                            return
                        if not data:
                            return
                        if frozen.is_set():
                            continue  # swallowed: neither side hears anything any more
                        if key.fileobj is server and limit is not None:
                            if sent_to_client + len(data) >= limit:
                                client.sendall(data[:max(0, limit - sent_to_client)])
                                self.cuts += 1
                                client.shutdown(socket.SHUT_RDWR)
                                return
                            sent_to_client += len(data)
                        try:
                            key.data.sendall(data)
                        except OSError:  # the other side went away (a cut, a killed relay): so does this pair
                            return
        finally:
            self._open.remove(entry)
