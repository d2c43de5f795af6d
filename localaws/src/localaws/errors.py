"""AWS-shaped errors raised by the handlers this package adds on top of moto."""

from __future__ import annotations


class AwsError(Exception):
    """An error answered as AWS's JSON protocol does: ``{"__type": code, "message": ...}``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
