"""Bad input fails fast: the one mechanism every DAG uses.

Domain code raises :class:`BadInput` (or a subclass) for input that no retry can fix: a
malformed file, an unknown region, a range that makes no sense. Task functions are
decorated with :func:`fails_fast`, which turns it into Airflow's ``AirflowFailException``:
the task fails at once, without using up its retries, and the failure alert names the
problem. Everything else (timeouts, 5xx, throttling) propagates and is retried as usual.

This module imports nothing from Airflow at import time, so domain modules stay pure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class BadInput(ValueError):
    """Input that retrying cannot fix; the message names the file, row, field or param."""


def fails_fast(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function``; a :class:`BadInput` fails the task without retries."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except BadInput as bad:
            from airflow.sdk.exceptions import AirflowFailException

            # `from None`: the message names the problem; the chain could quote the input
            # (a parser error holding a line of the file) into the log and the alerts
            raise AirflowFailException(str(bad)) from None

    return wrapper
