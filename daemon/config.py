"""The TOML configuration, validated: the key names are a contract (docs/configuration.md).

A bad file is reported as one line naming the key (``ConfigError``); the CLI turns
that into exit code 2. Secrets come from the environment, never from the file.
"""

from __future__ import annotations

import ipaddress
import socket
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from daemon.audit.keys import KeyProblem, load_private
from daemon.device_config import ChannelConfig as ChannelConfig  # noqa: PLC0414 - the file's
from daemon.device_config import DeviceConfig as DeviceConfig  # noqa: PLC0414 - [[device]]
from daemon.device_config import RegisterConfig as RegisterConfig  # noqa: PLC0414
from daemon.device_config import same_port
from daemon.mqtt.link import Broker
from daemon.secrets import ConfigError as ConfigError  # noqa: PLC0414 - load_config raises it
from daemon.secrets import read_secret
from daemon.section import Section
from daemon.sessions.tag_rules import check_tags
from daemon.sizes import parse_size

_Section = Section


class InfluxConfig(_Section):
    url: str = "http://127.0.0.1:8086"
    api: Literal["v1", "v2"] = "v1"
    database: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")] = "pvlog"
    """Goes into InfluxQL (``CREATE DATABASE``): plain characters only."""
    bucket: str | None = None
    org: str | None = None
    token_file: Path | None = None
    """v2: a file holding the token (else ``PVLOG_INFLUX_TOKEN`` or ``..._TOKEN_FILE``)."""
    ca_file: Path | None = None
    """https: the CA that signed the server's certificate (else the system's CAs)."""
    token: None = None
    """Never from this file: see ``token_file``. Present only to say so clearly."""

    @field_validator("token", mode="before")
    @classmethod
    def _no_secret_here(cls, v: object) -> None:
        raise ValueError(
            "secrets are never read from the config file: set PVLOG_INFLUX_TOKEN "
            "(or PVLOG_INFLUX_TOKEN_FILE), or influx.token_file"
        )

    @model_validator(mode="after")
    def _v2(self) -> InfluxConfig:
        if self.api == "v2" and not (self.bucket and self.org):
            raise ValueError("api v2 needs bucket and org")
        return self

    def secret_token(self) -> str | None:
        """The v2 token: ``PVLOG_INFLUX_TOKEN``, or the file ``PVLOG_INFLUX_TOKEN_FILE`` or
        ``token_file`` names. Read when needed, never stored in the config or logged."""
        return read_secret("PVLOG_INFLUX_TOKEN", self.token_file)

    batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 5000
    flush_interval_ms: Annotated[int, Field(ge=10, le=60_000)] = 200
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    """One write's deadline; a write that takes longer is retried."""

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


def _at_least_64k(v: str | int) -> int:
    """A size in bytes or with a unit; an outbox's empty database alone takes 16 KiB."""
    size = parse_size(v)
    if size < 2**16:
        raise ValueError("at least 64KiB")
    return size


class OutboxConfig(_Section):
    path: Path = Path("var/outbox.sqlite")
    max_bytes: int = 2 * 2**30
    drain_timeout_s: Annotated[float, Field(ge=0, le=3600)] = 10.0
    """On stop, how long to keep sending the backlog; what is left stays for the next start."""

    _size = field_validator("max_bytes", mode="before")(_at_least_64k)


class RecordingConfig(_Section):
    """Raw recordings (MCAP). On when the file has a ``[recording]`` table."""

    dir: Path = Path("var/recordings")
    enabled: bool = True
    max_file_bytes: int = 256 * 2**20
    """A file past this size is finished and the next one started."""
    fsync_ms: Annotated[int, Field(ge=10, le=60_000)] = 1000
    """How often each device's journal (every read, kept before it is used) is fsynced:
    what a power cut may lose; a killed process loses nothing it read."""

    _size = field_validator("max_file_bytes", mode="before")(_at_least_64k)


class InflationConfig(_Section):
    """The live inflation detector (``daemon.acquisition.inflations``): one ``pv_inflation``
    point per inflation."""

    enabled: bool = True
    threshold_atm: Annotated[float, Field(gt=0, le=100)] = 1.0
    """An inflation starts when the pressure rises above this..."""
    baseline_atm: Annotated[float, Field(ge=-1, le=100)] = 0.3
    """...and ends when it is back at or below this."""

    @model_validator(mode="after")
    def _levels(self) -> InflationConfig:
        if not self.baseline_atm < self.threshold_atm:
            raise ValueError("baseline_atm must be below threshold_atm")
        return self


class MqttConfig(_Section):
    """The live stream. On when the file has an ``[mqtt]`` table (and ``enabled`` is
    not false): the broker being away never stops recording."""

    url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")] = "pvlog"
    """Plain topic levels: no wildcards, no empty level."""
    enabled: bool = True
    mode: Literal["live", "edge"] = "live"
    """``live``: InfluxDB directly, MQTT for watching. ``edge``: the outbox drains to
    recorders (``pvlog record``) over MQTT instead of to InfluxDB."""
    edge_name: Annotated[str, Field(pattern=r"^$|^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")] = ""
    """This edge's name in topics; empty: the host name."""
    group: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")] = "pvlog-recorders"
    """Recorders of one group share the load (``$share/<group>/...``)."""
    ack_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    """An edge resends a batch no recorder confirmed within this long."""
    ca_file: Path | None = None
    """``mqtts://``: the CA that signed the broker's certificate (else the system's CAs)."""
    username: str | None = None
    password_file: Path | None = None
    """A file holding the password (else ``PVLOG_MQTT_PASSWORD`` or ``..._PASSWORD_FILE``)."""
    password: None = None
    """Never from this file: see ``password_file``. Present only to say so clearly."""

    @field_validator("password", mode="before")
    @classmethod
    def _no_secret_here(cls, v: object) -> None:
        raise ValueError(
            "secrets are never read from the config file: set PVLOG_MQTT_PASSWORD "
            "(or PVLOG_MQTT_PASSWORD_FILE), or mqtt.password_file"
        )

    def broker(self) -> Broker:
        """The connection settings, with the password read now (never stored here)."""
        return Broker(
            self.url,
            ca_file=self.ca_file,
            username=self.username,
            password=read_secret("PVLOG_MQTT_PASSWORD", self.password_file),
        )

    def edge(self) -> str:
        """This edge's name: ``edge_name``, or the host name."""
        return self.edge_name or socket.gethostname()

    @field_validator("url")
    @classmethod
    def _mqtt(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("must be mqtt://host[:port] or mqtts://host[:port] (TLS)")
        if parts.password is not None:
            raise ValueError("no password in the URL: set PVLOG_MQTT_PASSWORD")
        parts.port  # noqa: B018 - raises ValueError on a bad port
        return v


class HttpConfig(_Section):
    """The operations listener (``/metrics``, ``/healthz``, the live page): on when the
    table is present."""

    listen: str = "127.0.0.1:9108"
    """``host:port``; a loopback address unless ``allow_remote``."""
    allow_remote: bool = False
    """Serve other hosts too (a non-loopback ``listen``): the metrics say what runs here."""
    token_file: Path | None = None
    """With ``allow_remote``: the page's session control takes this token (or
    ``PVLOG_HTTP_TOKEN``); without one it is off."""

    open_reads: bool = False
    """With ``allow_remote``: anyone who reaches the address may read the page, its feed,
    downloads and metrics without the token (session control still takes it)."""

    def token(self) -> str | None:
        return read_secret("PVLOG_HTTP_TOKEN", self.token_file)

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    @model_validator(mode="after")
    def _loopback(self) -> HttpConfig:
        host, _, port = self.listen.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"listen: {self.listen!r} is not host:port")
        host = host.strip("[]")
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback and not self.allow_remote:
            raise ValueError(
                f"listen: {host} is not a loopback address; set allow_remote = true to "
                "serve other hosts"
            )
        return self


class AuditConfig(_Section):
    """The audit trail (docs/records.md): on unless ``enabled = false``."""

    enabled: bool = True
    path: Path | None = None
    """The trail's file; default ``audit.jsonl`` beside the recordings (with a
    ``[recording]`` table), else beside the outbox."""
    signing_key: Path | None = None
    """An Ed25519 private key (``pvlog keygen``, mode 0600) signing each manifest and,
    with it, the trail's head; a passphrase, if it has one, from
    ``PVLOG_SIGNING_PASSPHRASE`` (or ``..._FILE``)."""
    trusted_keys: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    """What checks with ``-c`` trust: ``KEY.pub`` files or ``ed25519:...`` fingerprints."""
    head_every_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    """How often a running daemon signs the trail's head, when it has grown."""

    def key(self) -> Ed25519PrivateKey | None:
        """The signing key, read now; a key others may read is a config error."""
        if self.signing_key is None:
            return None
        try:
            return load_private(self.signing_key, read_secret("PVLOG_SIGNING_PASSPHRASE", None))
        except KeyProblem as exc:
            raise ConfigError(f"audit.signing_key: {exc}") from None


class SessionConfig(_Section):
    name: Annotated[str, Field(pattern=r"^(auto|[A-Za-z0-9][A-Za-z0-9_.:-]{0,99})$")] = "auto"
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("tags")
    @classmethod
    def _reserved(cls, v: dict[str, str]) -> dict[str, str]:
        """Refused at load, so ``check-config`` says it before a run records a lot's
        specimens under a tag the report cannot read."""
        for key, value in v.items():
            if key in ("device", "session", "code", "state"):
                raise ValueError(f"tag {key!r} is set by pvlog itself")
            if not key or not value:
                raise ValueError("tag keys and values must not be empty")
        check_tags(v)  # a TagError is a ValueError: one line under session.tags
        return v


class Config(_Section):
    influx: InfluxConfig = Field(default_factory=InfluxConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    session: SessionConfig = Field(default_factory=SessionConfig)
    inflation: InflationConfig = Field(default_factory=InflationConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    device: list[DeviceConfig] = Field(default_factory=list)
    """At least one for ``pvlog run``; ``pvlog record`` reads none."""

    @property
    def recording_enabled(self) -> bool:
        """Raw recordings: only when the file asks for them with a ``[recording]`` table."""
        return "recording" in self.model_fields_set and self.recording.enabled

    @property
    def audit_path(self) -> Path | None:
        """Where the daemon keeps its audit trail (None: off)."""
        if not self.audit.enabled:
            return None
        if self.audit.path is not None:
            return self.audit.path
        if self.recording_enabled:
            return self.recording.dir / "audit.jsonl"
        return self.outbox.path.parent / "audit.jsonl"

    @property
    def live_enabled(self) -> bool:
        """MQTT live stream: only when the file asks for it with an ``[mqtt]`` table."""
        return "mqtt" in self.model_fields_set and self.mqtt.enabled

    @property
    def http_enabled(self) -> bool:
        """``/metrics``, ``/healthz``, the page: only when the file has an ``[http]`` table."""
        return "http" in self.model_fields_set

    @field_validator("device")
    @classmethod
    def _unique(cls, v: list[DeviceConfig]) -> list[DeviceConfig]:
        names = [d.name for d in v]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"device name {name!r} is used twice")
        seen: dict[str, str] = {}
        for d in v:
            port = same_port(d.port)
            if port in seen:
                raise ValueError(
                    f"devices {seen[port]!r} and {d.name!r} both read {port}: one port is one "
                    "device (each would get half of its bytes)"
                )
            seen[port] = d.name
        return v


def load_config(path: str | Path, *, devices: bool = True) -> Config:
    """Read and validate ``path``. Raises ``ConfigError`` with a one-line message.

    ``devices``: the file must name at least one device (``pvlog run``).
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:  # UTF-8, with or without the BOM some Windows editors put first
        text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8 (saved as "
            "Windows-1252 or Latin-1?): save the file as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_error(exc)}") from None
    if devices and not config.device:
        raise ConfigError(f"{path}: device: at least one [[device]] is needed")
    if config.live_enabled and config.mqtt.mode == "edge":
        names = {d.name for d in config.device}
        if config.mqtt.edge() in names:
            raise ConfigError(f"{path}: mqtt.edge_name: must differ from every device name")
    return config


def _first_error(exc: ValidationError) -> str:
    # A misspelt key shows up twice: unknown under its typo, missing under its name.
    # The typo is the one to name.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
    key = key.removeprefix(".") or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{key}: {msg}{more}"


def broker_settings(config_path: str | None, broker: str, prefix: str) -> tuple[Broker, str]:
    """(broker, topic prefix): from ``config_path``'s ``[mqtt]`` if given (with its TLS
    and credentials), else as given.

    For the commands that only talk to the broker (``watch``, ``session``).
    """
    if config_path is None:
        try:
            MqttConfig(url=broker)  # the same rule as the file's key
        except ValidationError as exc:
            raise ConfigError(
                f"--broker {broker}: {_first_error(exc).split(': ', 1)[-1]}"
            ) from None
        return Broker(broker), prefix
    config = load_config(config_path, devices=False)
    if "mqtt" not in config.model_fields_set:
        raise ConfigError(f"{config_path}: mqtt: this command needs an [mqtt] table")
    return config.mqtt.broker(), config.mqtt.topic_prefix
