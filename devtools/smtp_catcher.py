"""A real SMTP server that keeps every message it receives, for dev, demo and tests.

``python -m devtools.smtp_catcher --port 1025`` prints each message as it arrives;
``SmtpCatcher`` runs it in-process on a free port and exposes ``messages``.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import signal
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from localaws.server import free_port


@dataclass
class ReceivedMail:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def text(self) -> str:
        """Every text part, joined (HTML included as it is)."""
        parts = []
        for part in self.message.walk():
            if part.get_content_maintype() == "text":
                parts.append(part.get_content())
        return "\n".join(parts)


class _Handler:
    def __init__(self, catcher: SmtpCatcher) -> None:
        self.catcher = catcher

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        mail = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message)  # type: ignore[arg-type]
        with self.catcher._lock:
            self.catcher.messages.append(mail)
        if self.catcher.echo:
            print(f"[smtp] from {mail.sender} to {', '.join(mail.recipients)}: {mail.subject}", flush=True)
        return "250 Message accepted for delivery"


class SmtpCatcher:
    def __init__(self, port: int = 0, host: str = "127.0.0.1", echo: bool = False) -> None:
        self.host = host
        self.port = port or free_port()
        self.echo = echo
        self.messages: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller = Controller(_Handler(self), hostname=host, port=self.port)

    def start(self) -> SmtpCatcher:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpCatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def wait_for(self, count: int = 1, timeout: float = 30.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.1)
        raise TimeoutError(f"expected {count} e-mail(s), got {len(self.messages)} in {timeout}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    catcher = SmtpCatcher(port=args.port, host=args.host, echo=True).start()
    print(f"SMTP catcher listening on {args.host}:{catcher.port}", flush=True)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    catcher.stop()


if __name__ == "__main__":
    main()
