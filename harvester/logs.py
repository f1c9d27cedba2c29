"""Harvest logs on stderr in a parseable form: logfmt (key=value) by default, or JSON lines.

Callers log `logger.info("page", extra={"fields": {...}})`; nothing else here knows about harvesting.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

_BARE = re.compile(r"[A-Za-z0-9_.:/@+\-]+")


def _value(value: object) -> str:
    text = "" if value is None else str(value)
    if _BARE.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class LogfmtFormatter(logging.Formatter):
    """ts=... level=... msg=... key=value ..., one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {"ts": _timestamp(record), "level": record.levelname.lower(), "msg": record.getMessage()}
        fields.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return " ".join(f"{k}={_value(v)}" for k, v in fields.items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {"ts": _timestamp(record), "level": record.levelname.lower(), "msg": record.getMessage()}
        fields.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return json.dumps(fields, ensure_ascii=False, default=str)


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def configure(fmt: str = "logfmt", level: int = logging.INFO, stream: TextIO | None = None,
              handler: logging.Handler | None = None) -> logging.Handler:
    """Send the `harvester` loggers to stderr (or `handler`) in `fmt`; returns the handler."""
    handler = handler or logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    logger = logging.getLogger("harvester")
    for old in list(logger.handlers):
        if getattr(old, "_harvester", False):
            logger.removeHandler(old)
    handler._harvester = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler
