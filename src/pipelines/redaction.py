"""The one way a message quotes a URL: without its userinfo, query string or fragment.

A source URL is chosen by whoever triggers a run, and every message that names it travels
to the task log, the failure e-mail and SNS. ``https://user:s3cr3t@host/x?token=abc``
carries secrets in two places a message must never repeat: the userinfo (``user:s3cr3t@``)
and the query string (``?token=abc``, pre-signed S3 URLs, API keys). What is left
(scheme, host, port, path) is enough to tell which file was meant.

Pure: no Airflow, no third-party import, so domain code uses it as is.
"""

from __future__ import annotations

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
