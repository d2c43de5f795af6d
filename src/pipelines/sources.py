"""Fetch a source file named by a URL, only from places the deployment allows, up to a size cap.

A DAG param is chosen by whoever triggers the run, so a URL must not reach what that user
could not read otherwise (a worker's files, its metadata endpoint, another bucket):

- ``https://`` only to the hosts of Variable ``covid_source_hosts`` (comma-separated;
  default: the NYT and Johns Hopkins raw GitHub host). A redirect is followed only to an
  ``https://`` URL on the same host; anything else is refused, never fetched.
- ``s3://<data lake bucket>/covid/...`` only.
- local paths and ``file://`` only when environment variable
  ``PIPELINES_ALLOW_LOCAL_SOURCES`` is ``1``/``true`` (set by the offline/dev environment,
  never by a deployment).
- at most Variable ``covid_source_max_bytes`` bytes (default 50 MB), counted while the
  bytes arrive, so an endless or huge answer is cut off rather than held in memory.

Errors name the URL and the reason, never the content of what was read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlparse

import httpx
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from pipelines.errors import BadInput

ALLOWED_HOSTS_VARIABLE = "covid_source_hosts"
DEFAULT_ALLOWED_HOSTS = ("raw.githubusercontent.com",)
MAX_BYTES_VARIABLE = "covid_source_max_bytes"
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
ALLOW_LOCAL_ENV = "PIPELINES_ALLOW_LOCAL_SOURCES"
S3_PREFIX = "covid/"
MAX_REDIRECTS = 5
CHUNK_BYTES = 64 * 1024


class SourceUnavailable(RuntimeError):
    """The source could not be fetched (after retries for transient errors)."""


class SourceRefused(SourceUnavailable, BadInput):
    """The URL is outside what the deployment allows, or the file is over the size cap."""


@dataclass(frozen=True)
class SourcePolicy:
    """Where sources may come from and how big they may be."""

    allowed_hosts: frozenset[str]
    s3_bucket: str
    s3_prefix: str = S3_PREFIX
    allow_local: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES

    def check(self, url: str) -> str:
        """The URL's scheme when it is allowed; SourceRefused naming the rule otherwise."""
        parsed = urlparse(url)
        scheme = parsed.scheme.lower()
        if scheme == "https":
            host = (parsed.hostname or "").lower()
            if host not in self.allowed_hosts:
                raise SourceRefused(
                    f"{url}: host {host!r} is not allowed (Variable {ALLOWED_HOSTS_VARIABLE}: "
                    f"{', '.join(sorted(self.allowed_hosts)) or 'none'})"
                )
            if parsed.username or parsed.password:
                raise SourceRefused(f"{_redact(url)}: credentials in the URL are not allowed")
            return scheme
        if scheme == "s3":
            prefix = f"s3://{self.s3_bucket}/{self.s3_prefix}"
            if not url.startswith(prefix) or len(url) == len(prefix):
                raise SourceRefused(f"{url}: only objects under {prefix} are allowed")
            return scheme
        if scheme in ("", "file"):
            if not self.allow_local:
                raise SourceRefused(
                    f"{url}: local files are allowed only offline ({ALLOW_LOCAL_ENV}=1); "
                    f"use https://{'|'.join(sorted(self.allowed_hosts))} or s3://{self.s3_bucket}/{self.s3_prefix}"
                )
            return "file"
        raise SourceRefused(
            f"{_redact(url)}: scheme {scheme!r} is not allowed (https://, s3:// or, offline, a path)"
        )


def _redact(url: str) -> str:
    parsed = urlparse(url)
    if parsed.username or parsed.password:
        return parsed._replace(netloc=parsed.hostname or "").geturl()
    return url


def local_sources_allowed(environ: dict[str, str] | None = None) -> bool:
    value = (os.environ if environ is None else environ).get(ALLOW_LOCAL_ENV, "")
    return value.strip().lower() in ("1", "true", "yes")


def policy_from_settings(bucket: str) -> SourcePolicy:
    """The policy from the Variables and the environment (task code only: reads Variables)."""
    from pipelines.config import variable

    hosts_setting = variable(ALLOWED_HOSTS_VARIABLE, ",".join(DEFAULT_ALLOWED_HOSTS))
    hosts = frozenset(h.strip().lower() for h in hosts_setting.split(",") if h.strip())
    raw_max = variable(MAX_BYTES_VARIABLE, str(DEFAULT_MAX_BYTES))
    try:
        max_bytes = int(raw_max)
    except ValueError as error:
        raise ValueError(
            f"Variable {MAX_BYTES_VARIABLE} must be a number of bytes, got {raw_max!r}"
        ) from error
    if max_bytes <= 0:
        raise ValueError(f"Variable {MAX_BYTES_VARIABLE} must be positive, got {max_bytes}")
    return SourcePolicy(
        allowed_hosts=hosts, s3_bucket=bucket, allow_local=local_sources_allowed(), max_bytes=max_bytes
    )


def _collect(url: str, chunks: Iterable[bytes], max_bytes: int) -> bytes:
    received = bytearray()
    for chunk in chunks:
        received += chunk
        if len(received) > max_bytes:
            raise SourceRefused(
                f"{url}: larger than the {max_bytes:,}-byte cap ({MAX_BYTES_VARIABLE}); not read further"
            )
    return bytes(received)


def _declared_size_over_cap(url: str, size: int | None, max_bytes: int) -> None:
    if size is not None and size > max_bytes:
        raise SourceRefused(f"{url}: {size:,} bytes, over the {max_bytes:,}-byte cap ({MAX_BYTES_VARIABLE})")


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
def _https_get(url: str, policy: SourcePolicy, transport: httpx.BaseTransport | None = None) -> bytes:
    with httpx.Client(timeout=60, follow_redirects=False, transport=transport) as client:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            with client.stream("GET", current) as response:
                if response.is_redirect:
                    target = urljoin(current, response.headers.get("location", ""))
                    origin, destination = urlparse(current), urlparse(target)
                    if destination.scheme != "https" or destination.hostname != origin.hostname:
                        raise SourceRefused(
                            f"{url}: redirected to another host or scheme "
                            f"({destination.scheme}://{destination.hostname}); not followed"
                        )
                    policy.check(target)
                    current = target
                    continue
                if response.status_code >= 400:
                    # the body of an error page is never read: it is not ours to quote
                    raise httpx.HTTPStatusError(
                        f"HTTP {response.status_code} from {current}",
                        request=response.request,
                        response=response,
                    )
                length = response.headers.get("content-length")
                _declared_size_over_cap(
                    url, int(length) if length and length.isdigit() else None, policy.max_bytes
                )
                return _collect(url, response.iter_bytes(CHUNK_BYTES), policy.max_bytes)
        raise SourceUnavailable(f"{url}: more than {MAX_REDIRECTS} redirects")


def _s3_get(url: str, policy: SourcePolicy) -> bytes:
    from pipelines.aws.s3 import s3_hook, split_uri

    bucket, key = split_uri(url)
    response = s3_hook().get_conn().get_object(Bucket=bucket, Key=key)
    body = response["Body"]
    try:
        _declared_size_over_cap(url, response.get("ContentLength"), policy.max_bytes)
        return _collect(url, body.iter_chunks(CHUNK_BYTES), policy.max_bytes)
    finally:
        body.close()


def _local_get(url: str, policy: SourcePolicy) -> bytes:
    path = Path(urlparse(url).path if url.lower().startswith("file:") else url)
    with path.open("rb") as handle:  # /proc files report size 0: count what is read instead
        return _collect(url, iter(lambda: handle.read(CHUNK_BYTES), b""), policy.max_bytes)


def fetch(url: str, policy: SourcePolicy, transport: httpx.BaseTransport | None = None) -> bytes:
    """The bytes at ``url`` if the policy allows it; SourceRefused / SourceUnavailable otherwise."""
    scheme = policy.check(url)
    try:
        if scheme == "https":
            return _https_get(url, policy, transport)
        if scheme == "s3":
            return _s3_get(url, policy)
        return _local_get(url, policy)
    except SourceUnavailable:
        raise
    except httpx.HTTPStatusError as error:
        raise SourceUnavailable(f"{url}: HTTP {error.response.status_code}") from None
    except httpx.HTTPError as error:
        raise SourceUnavailable(f"{url}: {type(error).__name__}") from None
    except OSError as error:
        raise SourceUnavailable(f"{url}: {error.strerror or type(error).__name__}") from None
    except Exception as error:
        from botocore.exceptions import ClientError

        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "?")
            raise SourceUnavailable(f"{url}: S3 {code}") from None
        raise
