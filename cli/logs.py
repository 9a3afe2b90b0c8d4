"""Log lines for the worker and other long-running commands: plain text or JSON (``--log-json``)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from constellation.masking import masked

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class Masked(logging.Formatter):
    """Another formatter's lines with every URL password and token masked: whatever a log
    line quotes (an error, a URL), no secret reaches the log."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return masked(self.inner.format(record))


def configure(*, json_lines: bool, level: int = logging.INFO, also: tuple[str, ...] = ()) -> None:
    """Send ``constellation.*`` logs (and the loggers named in ``also``, such as a library's)
    to stderr as plain lines or JSON lines, secrets masked."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(Masked(JsonFormatter()))
    else:
        plain = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        handler.setFormatter(Masked(plain))
    for name in ("constellation", *also):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
