"""Fetch a source file named by a URL, only from places the deployment allows, up to a size cap.

A DAG param is chosen by whoever triggers the run, so a URL must not reach what that user
could not read otherwise (a worker's files, its metadata endpoint, another bucket, another
GitHub user's files on the same raw host):

- ``https://`` only under a *host and path prefix* of Variable ``covid_source_prefixes``
  (comma-separated ``host/path/`` entries; default
  ``raw.githubusercontent.com/nytimes/covid-19-data/`` and
  ``raw.githubusercontent.com/datasets/covid-19/``). A host alone is not enough:
  ``raw.githubusercontent.com`` serves every GitHub user's files. A path holding a ``.``
  or ``..`` segment, a backslash, or a percent-encoded ``.``, ``/``, ``\\`` or ``%`` is
  refused outright (never normalised), so nothing can climb out of a prefix. A redirect is
  followed only to an ``https://`` URL on the same host that passes the same check;
  anything else is refused, never fetched. No credentials in the URL, no port but 443.
- ``s3://<data lake bucket>/covid/...`` only (no ``.``/``..`` key segments either).
- local paths and ``file://`` only when environment variable
  ``PIPELINES_ALLOW_LOCAL_SOURCES`` is ``1``/``true`` (set by the offline/dev environment,
  never by a deployment).
- at most Variable ``covid_source_max_bytes`` bytes (default 50 MB), counted while the
  bytes arrive, so an endless or huge answer is cut off rather than held in memory.

Errors name the URL (through ``pipelines.redaction.redact_url``: no userinfo, no query
string) and the reason, never the content of what was read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from pipelines.errors import BadInput
from pipelines.redaction import redact_httpx_log, redact_url

ALLOWED_PREFIXES_VARIABLE = "covid_source_prefixes"
DEFAULT_ALLOWED_PREFIXES = (
    "raw.githubusercontent.com/nytimes/covid-19-data/",
    "raw.githubusercontent.com/datasets/covid-19/",
)
MAX_BYTES_VARIABLE = "covid_source_max_bytes"
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
ALLOW_LOCAL_ENV = "PIPELINES_ALLOW_LOCAL_SOURCES"
S3_PREFIX = "covid/"
MAX_REDIRECTS = 5
CHUNK_BYTES = 64 * 1024

redact_httpx_log()  # httpx logs every request's full URL at INFO: the task log keeps it

# What could make a server resolve a path outside the prefix it starts with: dot segments,
# backslashes (some servers treat them as "/"), and the percent-encodings of ".", "/", backslash
# and "%" itself (a double encoding decoded twice). Refused, never normalised: a source
# URL has no reason to hold any of them.
_ENCODED_SEPARATOR = re.compile(r"%(2e|2f|5c|25)", re.IGNORECASE)


def path_problem(path: str) -> str | None:
    """Why ``path`` could escape a prefix it textually starts with; None when it cannot."""
    if "\\" in path:
        return "a backslash in the path"
    if _ENCODED_SEPARATOR.search(path):
        return "a percent-encoded '.', '/', '\\' or '%' in the path"
    if any(segment in (".", "..") for segment in path.split("/")):
        return "a '.' or '..' segment in the path"
    return None


def parse_prefixes(setting: str) -> tuple[str, ...]:
    """``host/path/`` entries of Variable covid_source_prefixes (ValueError naming a bad one).

    Each entry needs at least one path segment (a bare shared host would allow any of its
    users' files) and ends with ``/``, so ``.../covid-19-data`` does not also allow
    ``.../covid-19-data-evil/``. ``https://`` in front is tolerated and dropped.
    """
    prefixes = []
    for raw_entry in setting.split(","):
        entry = raw_entry.strip()
        if not entry:
            continue
        if entry.lower().startswith("https://"):
            entry = entry[len("https://") :]
        host, _, path = entry.partition("/")
        if not re.fullmatch(r"[A-Za-z0-9.-]+", host) or not path.strip("/") or path_problem("/" + path):
            raise ValueError(
                f"Variable {ALLOWED_PREFIXES_VARIABLE}: {raw_entry.strip()!r} is not a host/path/ "
                f"prefix (e.g. {DEFAULT_ALLOWED_PREFIXES[0]})"
            )
        prefixes.append(f"{host.lower()}/{path.rstrip('/')}/")
    return tuple(prefixes)


class SourceUnavailable(RuntimeError):
    """The source could not be fetched (after retries for transient errors)."""


class SourceRefused(SourceUnavailable, BadInput):
    """The URL is outside what the deployment allows, or the file is over the size cap."""


@dataclass(frozen=True)
class SourcePolicy:
    """Where sources may come from and how big they may be."""

    allowed_prefixes: tuple[str, ...]
    s3_bucket: str
    s3_prefix: str = S3_PREFIX
    allow_local: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES

    def check(self, url: str) -> str:
        """The URL's scheme when it is allowed; SourceRefused naming the rule otherwise."""
        shown = redact_url(url)
        try:
            parsed = urlsplit(url)
            port = parsed.port
        except ValueError:
            raise SourceRefused(f"{shown}: not a valid URL") from None
        scheme = parsed.scheme.lower()
        if scheme == "https":
            if "@" in parsed.netloc:
                raise SourceRefused(f"{shown}: credentials in the URL are not allowed")
            if port not in (None, 443):
                raise SourceRefused(f"{shown}: port {port} is not allowed (https on 443 only)")
            problem = path_problem(parsed.path)
            if problem:
                raise SourceRefused(f"{shown}: {problem} is not allowed")
            location = f"{(parsed.hostname or '').lower()}{parsed.path}"
            if not any(location.startswith(prefix) for prefix in self.allowed_prefixes):
                raise SourceRefused(
                    f"{shown}: {location or 'no host'} is not under an allowed prefix "
                    f"(Variable {ALLOWED_PREFIXES_VARIABLE}: {', '.join(self.allowed_prefixes) or 'none'})"
                )
            return scheme
        if scheme == "s3":
            prefix = f"s3://{self.s3_bucket}/{self.s3_prefix}"
            if not url.startswith(prefix) or len(url) == len(prefix):
                raise SourceRefused(f"{shown}: only objects under {prefix} are allowed")
            problem = path_problem(parsed.path)
            if problem:
                raise SourceRefused(f"{shown}: {problem} is not allowed")
            return scheme
        if scheme in ("", "file"):
            if not self.allow_local:
                raise SourceRefused(
                    f"{shown}: local files are allowed only offline ({ALLOW_LOCAL_ENV}=1); "
                    f"use https://{'|'.join(self.allowed_prefixes)}... or s3://{self.s3_bucket}/{self.s3_prefix}"
                )
            return "file"
        raise SourceRefused(
            f"{shown}: scheme {scheme!r} is not allowed (https://, s3:// or, offline, a path)"
        )


def local_sources_allowed(environ: dict[str, str] | None = None) -> bool:
    value = (os.environ if environ is None else environ).get(ALLOW_LOCAL_ENV, "")
    return value.strip().lower() in ("1", "true", "yes")


def policy_from_settings(bucket: str) -> SourcePolicy:
    """The policy from the Variables and the environment (task code only: reads Variables)."""
    from pipelines.config import variable

    prefixes = parse_prefixes(variable(ALLOWED_PREFIXES_VARIABLE, ",".join(DEFAULT_ALLOWED_PREFIXES)))
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
        allowed_prefixes=prefixes,
        s3_bucket=bucket,
        allow_local=local_sources_allowed(),
        max_bytes=max_bytes,
    )


def _collect(url: str, chunks: Iterable[bytes], max_bytes: int) -> bytes:
    received = bytearray()
    for chunk in chunks:
        received += chunk
        if len(received) > max_bytes:
            raise SourceRefused(
                f"{redact_url(url)}: larger than the {max_bytes:,}-byte cap ({MAX_BYTES_VARIABLE}); not read further"
            )
    return bytes(received)


def _declared_size_over_cap(url: str, size: int | None, max_bytes: int) -> None:
    if size is not None and size > max_bytes:
        raise SourceRefused(
            f"{redact_url(url)}: {size:,} bytes, over the {max_bytes:,}-byte cap ({MAX_BYTES_VARIABLE})"
        )


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
                    # urljoin resolves dot segments of a relative Location; check() then
                    # refuses a result outside every prefix, and an absolute Location's own
                    # dot segments or encoded separators
                    target = urljoin(current, response.headers.get("location", ""))
                    origin, destination = urlsplit(current), urlsplit(target)
                    if destination.scheme != "https" or destination.hostname != origin.hostname:
                        raise SourceRefused(
                            f"{redact_url(url)}: redirected to another host or scheme "
                            f"({destination.scheme}://{destination.hostname}); not followed"
                        )
                    try:
                        policy.check(target)
                    except SourceRefused as refused:
                        raise SourceRefused(f"{redact_url(url)}: redirected, and then {refused}") from None
                    current = target
                    continue
                if response.status_code >= 400:
                    # the body of an error page is never read: it is not ours to quote
                    raise httpx.HTTPStatusError(
                        f"HTTP {response.status_code} from {redact_url(current)}",
                        request=response.request,
                        response=response,
                    )
                length = response.headers.get("content-length")
                _declared_size_over_cap(
                    url, int(length) if length and length.isdigit() else None, policy.max_bytes
                )
                return _collect(url, response.iter_bytes(CHUNK_BYTES), policy.max_bytes)
        raise SourceUnavailable(f"{redact_url(url)}: more than {MAX_REDIRECTS} redirects")


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
    path = Path(urlsplit(url).path if url.lower().startswith("file:") else url)
    with path.open("rb") as handle:  # /proc files report size 0: count what is read instead
        return _collect(url, iter(lambda: handle.read(CHUNK_BYTES), b""), policy.max_bytes)


def fetch(url: str, policy: SourcePolicy, transport: httpx.BaseTransport | None = None) -> bytes:
    """The bytes at ``url`` if the policy allows it; SourceRefused / SourceUnavailable otherwise."""
    scheme = policy.check(url)
    shown = redact_url(url)
    try:
        if scheme == "https":
            return _https_get(url, policy, transport)
        if scheme == "s3":
            return _s3_get(url, policy)
        return _local_get(url, policy)
    except SourceUnavailable:
        raise
    except httpx.HTTPStatusError as error:
        raise SourceUnavailable(f"{shown}: HTTP {error.response.status_code}") from None
    except httpx.HTTPError as error:
        raise SourceUnavailable(f"{shown}: {type(error).__name__}") from None
    except OSError as error:
        raise SourceUnavailable(f"{shown}: {error.strerror or type(error).__name__}") from None
    except Exception as error:
        from botocore.exceptions import ClientError

        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "?")
            raise SourceUnavailable(f"{shown}: S3 {code}") from None
        raise
