"""Configuration in one place: defaults, then an optional TOML file, then OAI_* variables, then overrides.

Validated once, at boot, with messages that say which setting is wrong.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

VERBS_WITH_PAGES = ("ListRecords", "ListIdentifiers", "ListSets")
_REPO_ID = re.compile(r"[a-zA-Z][a-zA-Z0-9\-]*(\.[a-zA-Z][a-zA-Z0-9\-]*)+")


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the setting."""


@dataclass(frozen=True)
class Config:
    database_url: str | None = None  # None: OAI_DATABASE_URL or ./oai.sqlite3 (see oai.store.engine)
    base_url: str | None = None  # None: taken from each request
    endpoint_path: str = "/oai"
    repository_name: str = "OAI-PMH repository"
    admin_email: tuple[str, ...] = ("admin@example.org",)
    repository_identifier: str = "example.org"
    page_size: int = 100
    page_size_listrecords: int | None = None
    page_size_listidentifiers: int | None = None
    page_size_listsets: int | None = None
    # the most metadata (bytes as stored) a ListRecords page holds: a page ends before the record that would pass
    # it (always one record), so that a worker's memory does not grow with the page size or the records' size
    page_max_bytes: int = 4 * 1024 * 1024
    secret_key: str | None = None  # None: a random secret kept in the database
    token_ttl_hours: int = 72
    compression: tuple[str, ...] = ("gzip", "deflate")
    stylesheet: bool = True
    max_request_bytes: int = 64 * 1024
    rate_limit_per_minute: int = 0  # 0 disables per-client flow control (503 Retry-After)
    proxy_hops: int = 0  # reverse proxies in front that set X-Forwarded-For/-Proto (trusted for the client)
    lookahead: bool = True  # render the next page of a list while the harvester reads this one
    lookahead_dir: str | None = None  # None: a directory of this user in the system's temporary directory

    def page_sizes(self) -> dict[str, int]:
        sizes = {verb: getattr(self, f"page_size_{verb.lower()}") for verb in VERBS_WITH_PAGES}
        return {verb: self.page_size if size is None else size for verb, size in sizes.items()}  # 0 is refused


def _coerce(name: str, raw: object, current: object) -> object:
    if isinstance(current, bool) or name == "stylesheet":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, not {raw!r}")
    if isinstance(current, tuple):
        items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
        return tuple(str(i).strip() for i in items if str(i).strip())
    if name.startswith("page_") or name in ("token_ttl_hours", "max_request_bytes", "rate_limit_per_minute",
                                                "proxy_hops"):
        try:
            return int(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    return None if raw is None else str(raw)


# Read elsewhere: the config file's name, gunicorn's settings (deploy/gunicorn.conf.py), the tests' database.
_READ_ELSEWHERE = {"OAI_CONFIG_FILE", "OAI_BIND", "OAI_WORKERS", "OAI_THREADS", "OAI_TEST_DATABASE_URL"}
# The harvester's own settings, which it reads from the environment only (harvester.client.FetchPolicy, the
# run's lease and retry delay, its worker processes): named here, where oai cannot import the harvester, so that
# a misspelt one is warned about too. tests/test_harvest_cli.py checks the list against the harvester's.
HARVEST_SETTINGS = frozenset(f"OAI_HARVEST_{name}" for name in (
    "CONNECT_TIMEOUT", "READ_TIMEOUT", "RESPONSE_TIMEOUT", "MAX_RESPONSE_MB", "ATTEMPTS", "BACKOFF", "BACKOFF_MAX",
    "RETRY_AFTER_MAX", "DELAY", "USER_AGENT", "LEASE_SECONDS", "RETRY_DELAY", "PROCESSES"))


def unknown_settings(environ: Mapping[str, str] | None = None) -> list[str]:
    """The OAI_* variables that name no setting: a misspelt one (OAI_PAGESIZE) would be ignored without a word."""
    environ = os.environ if environ is None else environ
    ours = {f"OAI_{f.name.upper()}" for f in fields(Config)} | _READ_ELSEWHERE | HARVEST_SETTINGS
    return sorted(k for k in environ if k.startswith("OAI_") and k not in ours)


def load_config(overrides: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Defaults < OAI_CONFIG_FILE (TOML) < OAI_* environment < overrides; raises ConfigError."""
    environ = os.environ if environ is None else environ
    cfg = Config()
    names = {f.name for f in fields(Config)}
    layers: list[Mapping[str, object]] = []
    path = (overrides or {}).get("config_file") or environ.get("OAI_CONFIG_FILE")
    if path:
        try:
            layers.append(tomllib.loads(Path(str(path)).read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read the config file {path}: {exc}") from None
        _refuse_unknown_keys(layers[0], names, path)
    layers.append({k[4:].lower(): v for k, v in environ.items() if k.startswith("OAI_")})
    layers.append(dict(overrides or {}))
    for layer in layers:
        for key, raw in layer.items():
            key = key.lower()
            if key in names:
                cfg = replace(cfg, **{key: _coerce(key, raw, getattr(cfg, key))})
    return validate(cfg)


def _refuse_unknown_keys(table: Mapping[str, object], names: set[str], path: object) -> None:
    """A key of the config file that names no setting stops the start: it was written for us, and a misspelt one
    (page_sise) would be ignored without a word (an outside audit)."""
    for key in table:
        if key.lower() in names:
            continue
        bare = key.lower().removeprefix("oai_")
        if bare in names:
            hint = f"write it {bare} (lower case, without OAI_)"
        elif f"OAI_{bare.upper()}" in HARVEST_SETTINGS | _READ_ELSEWHERE:
            hint = f"OAI_{bare.upper()} is read from the environment only"
        else:
            hint = "it names no setting; the README's Configuration section lists them"
        raise ConfigError(f"the config file {path} has a key {key!r}: {hint}")


# OAI-PMH.xsd, emailType: Identify is invalid with an address it refuses (admin@localhost)
_ADMIN_EMAIL = re.compile(r"\S+@(\S+\.)+\S+")


def validate(cfg: Config) -> Config:
    for verb, size in cfg.page_sizes().items():
        if not 1 <= size <= 10_000:
            raise ConfigError(f"the page size for {verb} must be between 1 and 10000, not {size}")
    if not cfg.endpoint_path.startswith("/") or cfg.endpoint_path.endswith("/") and cfg.endpoint_path != "/":
        raise ConfigError(f"endpoint_path must start with / and not end with one: {cfg.endpoint_path!r}")
    if not _REPO_ID.fullmatch(cfg.repository_identifier or ""):  # blank too: oai::local is no oai identifier
        raise ConfigError(
            "repository_identifier must be a domain name such as example.org "
            f"(OAI identifier guidelines), not {cfg.repository_identifier!r}"
        )
    if not cfg.admin_email or not all(_ADMIN_EMAIL.fullmatch(e) for e in cfg.admin_email):
        raise ConfigError("admin_email must list one or more e-mail addresses with a dot in their domain "
                          f"(OAI-PMH.xsd's emailType), not {cfg.admin_email!r}")
    unknown = set(cfg.compression) - {"gzip", "deflate"}
    if unknown:
        raise ConfigError(f"compression can only list gzip and deflate, not {sorted(unknown)}")
    if cfg.token_ttl_hours < 24:
        raise ConfigError("token_ttl_hours must be at least 24 (harvesters pause between pages)")
    if cfg.secret_key is not None and len(cfg.secret_key) < 16:
        raise ConfigError("secret_key must be at least 16 characters")
    if cfg.page_max_bytes < 1024:
        raise ConfigError(f"page_max_bytes must be at least 1024, not {cfg.page_max_bytes}")
    if cfg.max_request_bytes < 1024:
        raise ConfigError(f"max_request_bytes must be at least 1024 (a POST request's arguments), "
                          f"not {cfg.max_request_bytes}")
    if cfg.rate_limit_per_minute < 0:
        raise ConfigError(f"rate_limit_per_minute must be 0 (off) or more, not {cfg.rate_limit_per_minute}")
    if not 0 <= cfg.proxy_hops <= 5:
        raise ConfigError(f"proxy_hops must be the number of reverse proxies in front (0 to 5), not {cfg.proxy_hops}")
    if cfg.base_url is not None:
        parts = urlsplit(cfg.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ConfigError("base_url must be the endpoint's absolute http(s) URL without a query, such as "
                              f"https://repository.example.org/oai, not {cfg.base_url!r}")
    return cfg
