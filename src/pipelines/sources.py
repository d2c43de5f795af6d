"""Fetch a source file named by a URL: http(s)://, s3:// or a local path (file:// too)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import httpx
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter

SUPPORTED = "http(s)://, s3:// or a local path"


class SourceUnavailable(RuntimeError):
    """The source could not be fetched (after retries for transient errors)."""


def _transient(error: BaseException) -> bool:
    if isinstance(error, httpx.TransportError):
        return True
    return isinstance(error, httpx.HTTPStatusError) and error.response.status_code >= 500


@retry(
    retry=retry_if_exception(_transient),
    wait=wait_exponential_jitter(initial=1, max=20),
    stop=stop_after_attempt(4),
    reraise=True,
)
def _http_get(url: str) -> bytes:
    response = httpx.get(url, timeout=60, follow_redirects=True)
    response.raise_for_status()
    return response.content


def fetch(url: str) -> bytes:
    scheme = urlparse(url).scheme
    try:
        if scheme in ("http", "https"):
            return _http_get(url)
        if scheme == "s3":
            from pipelines.aws.s3 import read_bytes

            return read_bytes(url)
        if scheme in ("", "file"):
            return Path(urlparse(url).path if scheme == "file" else url).read_bytes()
    except (httpx.HTTPError, OSError) as error:
        raise SourceUnavailable(f"{url}: {error}") from error
    raise SourceUnavailable(f"{url}: unsupported location (use {SUPPORTED})")
