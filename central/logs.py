"""Structured JSON log lines that carry the request's correlation id."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
import uuid

import orjson

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="-")
service_name: contextvars.ContextVar[str] = contextvars.ContextVar(
    "service_name", default="central"
)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "central") -> None:
        super().__init__()
        # the program's own name when no request set one (threads start without a context)
        self.service = service
        # every request writes a line or two: the date part is formatted once per second
        self._second = -1
        self._stamp = ""

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # a race between threads only formats it twice
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._stamp}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": self._timestamp(record),
            "level": record.levelname,
            "service": getattr(record, "service", None) or service_name.get(self.service),
            "logger": record.name,
            "correlation_id": getattr(record, "correlation_id", None) or correlation_id.get(),
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if extra:
            line.update(extra)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:  # what orjson cannot write (an integer past 64 bits): as before
            return json.dumps(line, default=str)


def setup_logging(level: str = "INFO", service: str = "central") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log repeats what our middleware logs, with less context.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
