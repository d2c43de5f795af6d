"""Opt-in fault injection, so reliability tests meet the failures real AWS produces.

Off by default. Set at start-up from the environment, or at run time through the
control endpoint ``POST /_localaws/faults`` (JSON body with any of the fields below;
``POST /_localaws/reset`` turns every fault off).

| field                              | env var                                     | effect                                                                                          |
|------------------------------------|---------------------------------------------|-------------------------------------------------------------------------------------------------|
| ``dynamodb_unprocessed_rate``      | ``LOCALAWS_DYNAMODB_UNPROCESSED_RATE``      | fraction of BatchWriteItem requests left (partly) unprocessed                                   |
| ``dynamodb_throttle_rate``         | ``LOCALAWS_DYNAMODB_THROTTLE_RATE``         | fraction of writes answered ProvisionedThroughputExceeded                                       |
| ``s3_slowdown_rate``               | ``LOCALAWS_S3_SLOWDOWN_RATE``               | fraction of S3 requests answered HTTP 503 SlowDown                                              |
| ``athena_insert_fail_after_files`` | ``LOCALAWS_ATHENA_INSERT_FAIL_AFTER_FILES`` | the next INSERT INTO uploads this many of its files, then FAILS (files stay, nothing registered) |
| ``athena_insert_failures``         | ``LOCALAWS_ATHENA_INSERT_FAILURES``         | how many INSERTs fail that way (default 1), then the fault is off                               |
| ``s3_access_denied_prefixes``      | ``LOCALAWS_S3_ACCESS_DENIED_PREFIXES``      | ``bucket/prefix`` list (comma-separated in env): GetObject/HeadObject there answer 403          |
| ``dynamodb_fail_after_writes``     | ``LOCALAWS_DYNAMODB_FAIL_AFTER_WRITES``     | BatchWriteItem/PutItem/DeleteItem succeed this many times, then every one fails                 |
| ``dynamodb_failure_code``          | ``LOCALAWS_DYNAMODB_FAILURE_CODE``          | the error they fail with: ``InternalServerError`` (500, default) or one of ``DYNAMODB_FAILURES``|
| ``athena_queue_seconds``           | ``LOCALAWS_ATHENA_QUEUE_SECONDS``           | every query stays QUEUED this long before it runs (Athena's queueing; a latency knob)           |
| ``athena_run_seconds``             | ``LOCALAWS_ATHENA_RUN_SECONDS``             | every query stays RUNNING this long, engine work included (Athena's run time; a latency knob)   |
| ``seed``                           | ``LOCALAWS_FAULT_SEED``                     | seed of the random draws, for repeatable runs                                                   |

The stack's own internal calls (a query reading S3, a crawl) are exempt from every fault.
"""

from __future__ import annotations

import os
import random
import threading
from dataclasses import dataclass, field

RATE_FIELDS = ("dynamodb_unprocessed_rate", "dynamodb_throttle_rate", "s3_slowdown_rate")
COUNT_FIELDS = ("athena_insert_fail_after_files", "athena_insert_failures", "dynamodb_fail_after_writes")
SECONDS_FIELDS = ("athena_queue_seconds", "athena_run_seconds")
OTHER_FIELDS = ("s3_access_denied_prefixes", "dynamodb_failure_code", "seed")
# a latency longer than this is a mistake (Athena's own DML timeout is 30 minutes by default)
MAX_LATENCY_SECONDS = 1800.0
# code -> (HTTP status, message), as DynamoDB answers them
DYNAMODB_FAILURES = {
    "InternalServerError": (500, "Internal server error"),
    "AccessDeniedException": (
        400,
        "User: arn:aws:sts::123456789012:assumed-role/pipelines is not authorized to perform this action",
    ),
    "ResourceNotFoundException": (400, "Requested resource not found"),
    "ValidationException": (400, "One or more parameter values were invalid"),
}


def _count(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise ValueError(f"{name} must be a whole number >= 0 (or null), got {value!r}")
    return int(str(value).strip())


def _prefixes(value: object) -> tuple[str, ...]:
    """``["s3://bucket/a/", "bucket"]`` or ``"bucket/a/,other"`` -> ``("bucket/a/", "bucket")``."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError(
            f"s3_access_denied_prefixes must be a list of 'bucket/prefix' strings, got {value!r}"
        )
    cleaned = tuple(i.strip().removeprefix("s3://") for i in items if i.strip())
    if any(p.startswith("/") for p in cleaned):
        raise ValueError(f"s3_access_denied_prefixes must start with a bucket name, got {value!r}")
    return cleaned


@dataclass
class FaultSettings:
    dynamodb_unprocessed_rate: float = 0.0
    dynamodb_throttle_rate: float = 0.0
    s3_slowdown_rate: float = 0.0
    athena_insert_fail_after_files: int | None = None
    athena_insert_failures: int = 1
    s3_access_denied_prefixes: tuple[str, ...] = ()
    dynamodb_fail_after_writes: int | None = None
    dynamodb_failure_code: str = "InternalServerError"
    athena_queue_seconds: float = 0.0
    athena_run_seconds: float = 0.0
    seed: int | None = None
    _dynamodb_writes: int = field(default=0, repr=False)
    _random: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> FaultSettings:
        environ = os.environ if environ is None else environ
        settings = cls()
        values: dict[str, object] = {}
        for name in (*RATE_FIELDS, *COUNT_FIELDS, *SECONDS_FIELDS, *OTHER_FIELDS):
            variable = "LOCALAWS_FAULT_SEED" if name == "seed" else f"LOCALAWS_{name.upper()}"
            if environ.get(variable):
                values[name] = environ[variable]
        settings.update(values)
        return settings

    def update(self, values: dict[str, object]) -> None:
        """Apply the given fields; all are checked before any changes (a bad body changes nothing)."""
        unknown = set(values) - set(RATE_FIELDS) - set(COUNT_FIELDS) - set(SECONDS_FIELDS) - set(OTHER_FIELDS)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        checked: dict[str, object] = {}
        for name in RATE_FIELDS:
            if name in values:
                rate = float(values[name])  # type: ignore[arg-type]
                if not 0.0 <= rate <= 1.0:
                    raise ValueError(f"{name} must be between 0 and 1, got {rate}")
                checked[name] = rate
        for name in COUNT_FIELDS:
            if name in values:
                checked[name] = _count(name, values[name])
        for name in SECONDS_FIELDS:
            if name in values:
                try:
                    seconds = float(values[name] or 0)  # type: ignore[arg-type]
                except (TypeError, ValueError) as error:
                    raise ValueError(f"{name} must be a number of seconds, got {values[name]!r}") from error
                if not 0.0 <= seconds <= MAX_LATENCY_SECONDS:
                    raise ValueError(
                        f"{name} must be between 0 and {MAX_LATENCY_SECONDS:g} seconds, got {seconds}"
                    )
                checked[name] = seconds
        if checked.get("athena_insert_failures", 1) is None:
            raise ValueError("athena_insert_failures must be a whole number >= 0")
        if "s3_access_denied_prefixes" in values:
            checked["s3_access_denied_prefixes"] = _prefixes(values["s3_access_denied_prefixes"] or ())
        if "dynamodb_failure_code" in values:
            code = str(values["dynamodb_failure_code"])
            if code not in DYNAMODB_FAILURES:
                raise ValueError(
                    f"dynamodb_failure_code must be one of {', '.join(DYNAMODB_FAILURES)}, got {code}"
                )
            checked["dynamodb_failure_code"] = code
        if "seed" in values:
            checked["seed"] = None if values["seed"] is None else int(values["seed"])  # type: ignore[arg-type]
        with self._lock:
            for name, value in checked.items():
                setattr(self, name, value)
            if "athena_insert_fail_after_files" in checked and "athena_insert_failures" not in checked:
                self.athena_insert_failures = 1
            if "dynamodb_fail_after_writes" in checked:
                self._dynamodb_writes = 0  # "after N successful writes" counts from now
            if "seed" in checked:
                self._random.seed(self.seed)

    def clear(self) -> None:
        """Every fault off (the seed stays)."""
        defaults = FaultSettings()
        with self._lock:
            for name in (
                *RATE_FIELDS,
                *COUNT_FIELDS,
                *SECONDS_FIELDS,
                "s3_access_denied_prefixes",
                "dynamodb_failure_code",
            ):
                setattr(self, name, getattr(defaults, name))
            self._dynamodb_writes = 0

    def draw(self, name: str) -> bool:
        """True when the fault ``name`` should hit this request."""
        rate = getattr(self, name)
        if rate <= 0.0:
            return False
        with self._lock:
            return self._random.random() < rate

    def fraction(self) -> float:
        with self._lock:
            return self._random.random()

    def take_athena_insert_failure(self) -> int | None:
        """For an INSERT about to publish: how many files to write before failing, or None."""
        with self._lock:
            if self.athena_insert_fail_after_files is None or self.athena_insert_failures <= 0:
                return None
            self.athena_insert_failures -= 1
            files = self.athena_insert_fail_after_files
            if self.athena_insert_failures == 0:
                self.athena_insert_fail_after_files = None
            return files

    def s3_access_denied(self, bucket: str, key: str) -> bool:
        """True when reading ``bucket/key`` should be refused with 403 AccessDenied."""
        path = f"{bucket}/{key}"
        return any(path.startswith(prefix) for prefix in self.s3_access_denied_prefixes)

    def dynamodb_write_failure(self) -> str | None:
        """For a DynamoDB write about to run: the error code to fail it with, or None (counted)."""
        with self._lock:
            if self.dynamodb_fail_after_writes is None:
                return None
            if self._dynamodb_writes < self.dynamodb_fail_after_writes:
                self._dynamodb_writes += 1
                return None
            return self.dynamodb_failure_code

    def as_dict(self) -> dict[str, object]:
        names = (*RATE_FIELDS, *COUNT_FIELDS, *SECONDS_FIELDS, *OTHER_FIELDS)
        return {name: (list(v) if isinstance(v := getattr(self, name), tuple) else v) for name in names}
