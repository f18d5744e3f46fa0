"""Service settings: environment (ISPBX_*) > pjsip_config.ini > defaults.

pydantic-settings has no INI source, so :func:`read_ini` reads the service ini with configparser.
:func:`load_settings` turns every problem into one line that names the setting, which ``main.py``
prints before exiting non-zero.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ispbx.ami.target import AmiTarget
from ispbx.resources import bundled_detail_ini, bundled_frontend, bundled_ini, sample_pjsip_conf

BUNDLED_INI = bundled_ini()
BUNDLED_DETAIL_INI = bundled_detail_ini()
SAMPLE_PJSIP_CONF = sample_pjsip_conf()
SYSTEM_PJSIP_CONF = Path("/etc/asterisk/pjsip.conf")
ENV_PREFIX = "ISPBX_"

# field name -> (ini section, ini option)
INI_KEYS: dict[str, tuple[str, str]] = {
    "ami_host": ("ami", "host"),
    "ami_port": ("ami", "port"),
    "ami_username": ("ami", "username"),
    "ami_secret": ("ami", "secret"),
    "pjsip_conf": ("pjsip", "conf"),
    "detail_ini": ("pjsip", "detail_ini"),
    "http_host": ("http", "host"),
    "http_port": ("http", "port"),
    "api_tokens": ("api", "tokens"),
    "auth": ("api", "auth"),
    "token_file": ("api", "token_file"),
    "cors_origins": ("api", "cors_origins"),
    "frontend_dir": ("http", "frontend_dir"),
    "database_url": ("history", "database_url"),
    "managed_conf": ("pjsip", "managed_conf"),
    "state_dir": ("service", "state_dir"),
    "history_days": ("history", "days"),
    "flap_changes": ("history", "flap_changes"),
    "flap_minutes": ("history", "flap_minutes"),
    "http_max_header_bytes": ("http", "max_header_bytes"),
    "http_header_timeout": ("http", "header_timeout"),
    "http_keepalive_timeout": ("http", "keepalive_timeout"),
    "http_max_connections": ("http", "max_connections"),
    "http_max_event_streams": ("http", "max_event_streams"),
}
LOOPBACK_HOSTS = ("localhost", "::1")


class SettingsError(Exception):
    """A setting is invalid; ``str()`` is one line naming the setting."""


def read_ini(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as exc:
        raise SettingsError(f"ISPBX_CONFIG: cannot read {str(path)!r}: {exc.strerror}") from None
    except configparser.Error as exc:
        first_line = str(exc).splitlines()[0]
        raise SettingsError(
            f"ISPBX_CONFIG: {str(path)!r} is not a valid ini: {first_line}"
        ) from None
    values: dict[str, str] = {}
    for name, (section, option) in INI_KEYS.items():
        value = parser.get(section, option, fallback="").strip()
        if value:
            values[name] = value
    return values


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ispbx"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in LOOPBACK_HOSTS


def _port(value: Any) -> int:
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"not a valid port: {value!r}")
    return int(text)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    config: Path = BUNDLED_INI
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_username: str = ""
    ami_secret: str = ""
    pjsip_conf: Path | None = None
    detail_ini: Path = BUNDLED_DETAIL_INI
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    api_tokens: str = ""
    auth: bool = True
    token_file: Path = Field(default_factory=lambda: default_state_dir() / "admin-token")
    cors_origins: str = ""
    frontend_dir: Path = Field(default_factory=bundled_frontend)
    database_url: str = Field(
        default_factory=lambda: f"sqlite+aiosqlite:///{default_state_dir() / 'ispbx.db'}"
    )
    history_days: int = Field(default=90, ge=1, le=36500)
    managed_conf: str = "pjsip_ispbx.conf"
    state_dir: Path = Field(default_factory=default_state_dir)
    flap_changes: int = Field(default=4, ge=2, le=1000)
    flap_minutes: float = Field(default=10.0, gt=0, le=1440)

    @field_validator("managed_conf")
    @classmethod
    def _valid_managed_conf(cls, value: str) -> str:
        path = Path(value.strip())
        if not value.strip() or path.is_absolute() or ".." in path.parts or path.suffix != ".conf":
            example = "e.g. pjsip_ispbx.conf"
            raise ValueError(
                f"must be a .conf file name beside pjsip.conf ({example}), not {value!r}"
            )
        return str(path)

    # The HTTP edge (ispbx.edge): what a client may hold before its token is checked.
    http_max_header_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)
    http_header_timeout: float = Field(10.0, gt=0, le=60)
    http_keepalive_timeout: int = Field(5, ge=1, le=300)
    http_max_connections: int = Field(1000, ge=10, le=1_000_000)
    http_max_event_streams: int = Field(500, ge=1)

    @field_validator("ami_port", "http_port", mode="before")
    @classmethod
    def _valid_port(cls, value: Any) -> int:
        return _port(value)

    @field_validator("auth", mode="before")
    @classmethod
    def _valid_auth(cls, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word not in {"on", "off"}:
            raise ValueError(f"must be 'on' or 'off', not {value!r}")
        return word == "on"

    @field_validator("api_tokens")
    @classmethod
    def _valid_tokens(cls, value: str) -> str:
        for entry in (part.strip() for part in value.split(",") if part.strip()):
            role, _, token = (piece.strip() for piece in entry.partition(":"))
            if role not in {"viewer", "admin", "metrics"} or len(token) < 8:
                raise ValueError(
                    "entries must be 'viewer:TOKEN', 'admin:TOKEN' or 'metrics:TOKEN' "
                    "(8+ characters)"
                )
        return value

    @model_validator(mode="after")
    def _auth_off_only_on_loopback(self) -> Settings:
        if not self.auth and not is_loopback(self.http_host):
            raise ValueError("off is only allowed when ISPBX_HTTP_HOST is a loopback address")
        return self

    @model_validator(mode="after")
    def _streams_leave_room(self) -> Settings:
        if self.http_max_event_streams >= self.http_max_connections:
            raise ValueError(
                "http_max_event_streams: must be below ISPBX_HTTP_MAX_CONNECTIONS "
                f"({self.http_max_connections}), so other requests still get a connection"
            )
        return self

    @property
    def tokens(self) -> list[tuple[str, str]]:
        """(role, token) pairs from ISPBX_API_TOKENS / [api] tokens."""
        pairs = []
        for entry in (part.strip() for part in self.api_tokens.split(",") if part.strip()):
            role, _, token = (piece.strip() for piece in entry.partition(":"))
            pairs.append((role, token))
        return pairs

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @field_validator("ami_host", "http_host")
    @classmethod
    def _valid_host(cls, value: str) -> str:
        if not value.strip() or any(c.isspace() for c in value.strip()):
            raise ValueError(f"not a valid host: {value!r}")
        return value.strip()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() merges environment over ini explicitly and passes the result in, so the
        # precedence lives in one place and tests can hand in their own environment.
        return (init_settings,)

    @property
    def pjsip_conf_path(self) -> Path:
        """The pjsip.conf to read: the configured one, else the system one, else the sample."""
        if self.pjsip_conf is not None:
            return self.pjsip_conf
        return SYSTEM_PJSIP_CONF if SYSTEM_PJSIP_CONF.exists() else SAMPLE_PJSIP_CONF

    @property
    def uses_sample_pjsip_conf(self) -> bool:
        return self.pjsip_conf_path == SAMPLE_PJSIP_CONF

    def pbxes(self) -> list[PbxSettings]:
        """The Asterisk servers to watch: today one, ``default``, from the top-level settings."""
        target = AmiTarget(self.ami_host, self.ami_port, self.ami_username, self.ami_secret)
        conf = self.pjsip_conf_path
        return [
            PbxSettings(
                "default",
                target,
                conf,
                managed_conf=conf.parent / self.managed_conf,
                journal=self.state_dir / "write-journal-default.json",
            )
        ]


@dataclass(frozen=True)
class PbxSettings:
    """What one Pbx needs to know: its id, its AMI and its pjsip.conf."""

    id: str
    ami: AmiTarget
    pjsip_conf: Path
    managed_conf: Path  # where created endpoints go (an #include of pjsip.conf)
    journal: Path  # the previous contents of files while a write is under way


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``environ`` (default ``os.environ``) over the ini it names."""
    env = os.environ if environ is None else environ
    ini_path = Path(env.get(f"{ENV_PREFIX}CONFIG") or BUNDLED_INI)
    values: dict[str, Any] = {**read_ini(ini_path), **env_values(env), "config": ini_path}
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise SettingsError(_one_line(exc, env)) from None
    if not settings.detail_ini.is_file():
        raise SettingsError(f"ISPBX_DETAIL_INI: file not found: {str(settings.detail_ini)!r}")
    return settings


def env_values(env: Mapping[str, str]) -> dict[str, str]:
    """The ISPBX_* variables that name a setting, keyed by field name."""
    names = set(Settings.model_fields) - {"config"}
    return {
        name: env[f"{ENV_PREFIX}{name.upper()}"]
        for name in names
        if f"{ENV_PREFIX}{name.upper()}" in env
    }


def _one_line(exc: ValidationError, env: Mapping[str, str]) -> str:
    error = exc.errors()[0]
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["loc"]:
        field = str(error["loc"][0])
    else:  # a model validator: its message starts with "<field>: " (or it is about auth)
        named, sep, rest = message.partition(": ")
        field, message = (
            (named, rest) if sep and named in Settings.model_fields else ("auth", message)
        )
    env_name = f"{ENV_PREFIX}{field.upper()}"
    if env_name in env or field not in INI_KEYS:
        where = env_name
    else:
        section, option = INI_KEYS[field]
        where = f"{env.get(f'{ENV_PREFIX}CONFIG') or BUNDLED_INI} [{section}] {option}"
    return f"{where}: {message}"
