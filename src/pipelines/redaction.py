"""The one way a message quotes a URL: without its userinfo, query string or fragment.

A source URL is chosen by whoever triggers a run, and every message that names it travels
to the task log, the failure e-mail and SNS. ``https://user:s3cr3t@host/x?token=abc``
carries secrets in two places a message must never repeat: the userinfo (``user:s3cr3t@``)
and the query string (``?token=abc``, pre-signed S3 URLs, API keys). What is left
(scheme, host, port, path) is enough to tell which file was meant.

Pure: no Airflow, no third-party import, so domain code uses it as is. ``redact_httpx_log``
applies the same to the request lines httpx writes to the (task) log.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

REDACTED = "[redacted]"


def redact_url(url: object) -> str:
    """``url`` without userinfo, query and fragment; a plain path is returned as it is.

    Anything that does not even parse as a URL is not quoted at all (it could be anything).
    """
    text = str(url)
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = parts.port  # ValueError for a port that is not a number
    except ValueError:
        return "(an unparseable URL, not shown)"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{_host_port(host, port)}"
    query = REDACTED if parts.query else ""
    fragment = REDACTED if parts.fragment else ""
    if not parts.scheme and not netloc:
        # a local path: nothing of it is a credential, but a "?" in a file name is cut like a query
        return urlunsplit(("", "", parts.path, query, fragment))
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _host_port(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


class RedactUrlsInLogRecords(logging.Filter):
    """Rewrites every URL-looking argument of a log record through :func:`redact_url`.

    httpx logs each request as ``HTTP Request: GET <url> ...`` at INFO, which a task log
    keeps: a source URL's ``?token=...`` would be written there even though every message
    of ours redacts it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted_arg(arg) for arg in record.args)
        return True


def _redacted_arg(arg: object) -> object:
    if type(arg).__name__ == "URL" or (isinstance(arg, str) and "://" in arg):
        return redact_url(arg)
    return arg


def redact_httpx_log() -> None:
    """Install the filter on httpx's logger once (idempotent; process-wide)."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, RedactUrlsInLogRecords) for f in logger.filters):
        logger.addFilter(RedactUrlsInLogRecords())
