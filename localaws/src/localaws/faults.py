"""Opt-in fault injection, so reliability tests meet the failures real AWS produces.

Off by default. Set at start-up from the environment, or at run time through the
control endpoint ``POST /_localaws/faults`` (JSON body with any of the fields below).

| field                         | env var                                   | effect                                                        |
|-------------------------------|-------------------------------------------|---------------------------------------------------------------|
| ``dynamodb_unprocessed_rate`` | ``LOCALAWS_DYNAMODB_UNPROCESSED_RATE``    | fraction of BatchWriteItem requests left (partly) unprocessed |
| ``dynamodb_throttle_rate``    | ``LOCALAWS_DYNAMODB_THROTTLE_RATE``       | fraction of writes answered ProvisionedThroughputExceeded     |
| ``s3_slowdown_rate``          | ``LOCALAWS_S3_SLOWDOWN_RATE``             | fraction of S3 requests answered HTTP 503 SlowDown            |
| ``seed``                      | ``LOCALAWS_FAULT_SEED``                   | seed of the random draws, for repeatable runs                 |
"""

from __future__ import annotations

import os
import random
import threading
from dataclasses import dataclass, field

RATE_FIELDS = ("dynamodb_unprocessed_rate", "dynamodb_throttle_rate", "s3_slowdown_rate")


@dataclass
class FaultSettings:
    dynamodb_unprocessed_rate: float = 0.0
    dynamodb_throttle_rate: float = 0.0
    s3_slowdown_rate: float = 0.0
    seed: int | None = None
    _random: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> FaultSettings:
        environ = os.environ if environ is None else environ
        settings = cls()
        values: dict[str, object] = {}
        for name in RATE_FIELDS:
            raw = environ.get(f"LOCALAWS_{name.upper()}")
            if raw:
                values[name] = raw
        if environ.get("LOCALAWS_FAULT_SEED"):
            values["seed"] = environ["LOCALAWS_FAULT_SEED"]
        settings.update(values)
        return settings

    def update(self, values: dict[str, object]) -> None:
        unknown = set(values) - set(RATE_FIELDS) - {"seed"}
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        with self._lock:
            for name in RATE_FIELDS:
                if name in values:
                    rate = float(values[name])  # type: ignore[arg-type]
                    if not 0.0 <= rate <= 1.0:
                        raise ValueError(f"{name} must be between 0 and 1, got {rate}")
                    setattr(self, name, rate)
            if "seed" in values:
                self.seed = None if values["seed"] is None else int(values["seed"])  # type: ignore[arg-type]
                self._random.seed(self.seed)

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

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in (*RATE_FIELDS, "seed")}
