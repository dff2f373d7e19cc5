"""Logging for people on a TTY and JSON lines for machines everywhere else."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# A record may carry an icon (``logger.info("...", extra=icon("✅"))``): shown on a terminal, left out of JSON,
# so machines see the same message text whether or not a person is watching.
ICON = "icon"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def icon(symbol: str) -> dict[str, Any]:
    """The ``extra`` that gives a log line its icon on a terminal."""
    return {ICON: symbol}


class ConsoleFormatter(logging.Formatter):
    """Readable lines for a person: time, level, logger, and the record's icon before its message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        symbol = getattr(record, ICON, None)
        if symbol:
            record.message = f"{symbol} {record.message}"
        return super().formatMessage(record)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if sys.stderr.isatty():
        handler.setFormatter(ConsoleFormatter())
    else:
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO, URL and all: webhook URLs may carry tokens in their query.
    for noisy in ("httpx", "httpcore", "hpack"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
