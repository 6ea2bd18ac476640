"""`[web]` of the main config: where the console listens and where its users and signing key live."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailrelay.config import is_loopback
from mailrelay.i18n import tr
from mailrelay.tomlcheck import TomlFile

_KEYS = ("listen", "users_file", "secret_file", "idle_minutes", "behind_proxy", "max_upload_kb")


@dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8025
    users_file: Path = Path("web-users")  # argon2 hashes, one "name:hash" per line (mailrelay web adduser)
    secret_file: Path = Path("web-secret")  # the key that signs the session cookies; made on first start
    idle_minutes: float = 30  # a session unused this long is over
    behind_proxy: bool = False  # served by a TLS reverse proxy: trust its X-Forwarded-Proto/-For, cookies Secure
    max_upload_kb: int = 2048  # an uploaded routing file or .eml larger than this is refused


def web_settings(config: Path) -> WebSettings:
    """The [web] table of the main file (every key optional); ConfigError naming every problem."""
    doc = TomlFile.load(config)
    table = doc.data.get("web", {})
    if not isinstance(table, dict):
        doc.problem(("web",), tr("'web' muss eine Tabelle sein ([web])", "'web' must be a table ([web])"))
        doc.raise_if_problems()
    doc.check_keys(table, _KEYS, ("web",))
    default = WebSettings()
    listen = doc.get(table, "listen", str, ("web",), f"{default.host}:{default.port}") or ""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        doc.problem(("web", "listen"), tr(f"'{listen}' ist keine Adresse mit Port", f"'{listen}' is not an address with a port"),
                    tr('z. B. listen = "127.0.0.1:8025"', 'like listen = "127.0.0.1:8025"'))
        host, port = default.host, str(default.port)
    elif not is_loopback(host):
        doc.problem(("web", "listen"), tr(f"die Konsole nur auf einer Loopback-Adresse anbieten, nicht auf {host}: "
                                          "davor steht der TLS-Proxy der Organisation",
                                          f"the console listens on a loopback address only, not on {host}: the "
                                          "organisation's TLS proxy stands in front of it"))
    base = config.parent
    idle = doc.get(table, "idle_minutes", (int, float), ("web",), default.idle_minutes)
    if idle is not None and not 1 <= idle <= 24 * 60:
        doc.problem(("web", "idle_minutes"), tr("idle_minutes muss zwischen 1 und 1440 liegen",
                                                "idle_minutes must be between 1 and 1440"))
    upload = doc.get(table, "max_upload_kb", int, ("web",), default.max_upload_kb)
    if upload is not None and not 1 <= upload <= 50 * 1024:
        doc.problem(("web", "max_upload_kb"), tr("max_upload_kb muss zwischen 1 und 51200 liegen",
                                                 "max_upload_kb must be between 1 and 51200"))
    doc.raise_if_problems()
    return WebSettings(
        host=host, port=int(port),
        users_file=(base / doc.get(table, "users_file", str, ("web",), str(default.users_file))).resolve(),
        secret_file=(base / doc.get(table, "secret_file", str, ("web",), str(default.secret_file))).resolve(),
        idle_minutes=float(idle or default.idle_minutes),
        behind_proxy=bool(doc.get(table, "behind_proxy", bool, ("web",), False)),
        max_upload_kb=int(upload or default.max_upload_kb))
