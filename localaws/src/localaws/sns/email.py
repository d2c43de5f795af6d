"""SNS e-mail subscriptions that really send e-mail: to an SMTP relay (offline, the SMTP catcher).

moto's SNS accepts ``email`` / ``email-json`` subscriptions and records each publish
(``Topic.sent_notifications``) but delivers nothing to them. Here every publish to a topic
is also sent, for each of its e-mail subscriptions, as one e-mail through the relay set
with :func:`set_relay`, shaped as AWS sends it:

* ``email``: ``From: <topic DisplayName> <no-reply@sns.amazonaws.com>``, the subject of the
  publish ("AWS Notification Message" when it has none), the message as the plain-text
  body followed by AWS' unsubscribe footer;
* ``email-json``: the same envelope, the body the JSON notification document.

A subscription's filter policy applies as in moto (the hook runs inside moto's own
``Subscription.publish``, after its filter check). AWS sends e-mail only to confirmed
subscriptions; moto confirms every subscription at once, so offline every e-mail
subscriber receives the messages (the confirmation e-mail itself is not sent).

Without a relay (the default) nothing is sent and moto's behaviour is unchanged. A relay
that cannot be reached is logged and never fails the publish: SNS delivery is
asynchronous in AWS, a publisher never sees a subscriber's delivery failure.
"""

from __future__ import annotations

import json
import logging
import smtplib
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

log = logging.getLogger("localaws.sns")

SENDER = "no-reply@sns.amazonaws.com"
DEFAULT_SUBJECT = "AWS Notification Message"
EMAIL_PROTOCOLS = ("email", "email-json")

_relay: tuple[str, int] | None = None
_installed = False
_lock = threading.Lock()
# Ids of the publishes sent with MessageStructure "json" (the Amazon provider's SnsHook always
# does): moto records the raw JSON document, sent_messages() reports what a subscriber reads.
_json_structured: set[str] = set()


def json_structured(message_id: str) -> bool:
    return message_id in _json_structured


def set_relay(host: str | None, port: int | None = None) -> None:
    """Send SNS e-mail through ``host:port`` from now on (``None``: send nothing)."""
    global _relay
    _relay = (host, int(port or 25)) if host else None
    install()


def relay() -> tuple[str, int] | None:
    return _relay


def parse_relay(value: str) -> tuple[str, int]:
    """``"host:port"`` (``LOCALAWS_SMTP``) -> (host, port); a clear error naming the setting."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"LOCALAWS_SMTP must be host:port, got {value!r}")
    return host, int(port)


def install() -> None:
    """Wrap moto's ``Subscription.publish`` once per process (moto's backends are global too)."""
    global _installed
    with _lock:
        if _installed:
            return
        from moto.sns.models import Subscription, Topic

        topic_publish = Topic.publish

        def publish_to_topic(self: Any, message: str, *args: Any, **kwargs: Any) -> str:
            message_id = topic_publish(self, message, *args, **kwargs)
            if kwargs.get("message_structure") == "json":
                _json_structured.add(message_id)
            return message_id

        Topic.publish = publish_to_topic
        original = Subscription.publish

        def publish(
            self: Any, message: str, message_id: str, subject: str | None = None, **kwargs: Any
        ) -> None:
            original(self, message, message_id, subject=subject, **kwargs)
            if (
                self.protocol in EMAIL_PROTOCOLS
                and _relay is not None
                and _passes_filter(self, message, kwargs)
            ):
                deliver(self, message, message_id, subject, kwargs.get("message_structure"))

        Subscription.publish = publish
        _installed = True


def _passes_filter(subscription: Any, message: str, kwargs: dict[str, Any]) -> bool:
    matcher = getattr(subscription, "_filter_policy_matcher", None)
    return matcher is None or matcher.matches(kwargs.get("message_attributes"), message)


def email_for(subscription: Any, message: str, message_id: str, subject: str | None) -> EmailMessage:
    """The e-mail AWS sends one subscriber for one publish."""
    topic = subscription.topic
    display_name = getattr(topic, "display_name", "") or topic.name
    mail = EmailMessage()
    mail["From"] = f"{display_name} <{SENDER}>"
    mail["To"] = subscription.endpoint
    mail["Subject"] = subject or DEFAULT_SUBJECT
    mail["Message-ID"] = f"<{message_id}@sns.amazonaws.com>"
    mail["X-Amz-Sns-Message-Id"] = message_id
    mail["X-Amz-Sns-Topic-Arn"] = topic.arn
    mail["X-Amz-Sns-Subscription-Arn"] = subscription.arn
    if subscription.protocol == "email-json":
        document = {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": topic.arn,
            "Subject": subject,
            "Message": message,
            "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "UnsubscribeURL": f"https://sns.{_region(topic.arn)}.amazonaws.com/?Action=Unsubscribe"
            f"&SubscriptionArn={subscription.arn}",
        }
        mail.set_content(json.dumps(document))
    else:
        mail.set_content(
            f"{message}\n\n--\nIf you wish to stop receiving notifications from this topic, please click or "
            f"visit the link below to unsubscribe:\nhttps://sns.{_region(topic.arn)}.amazonaws.com/"
            f"unsubscribe.html?SubscriptionArn={subscription.arn}&Endpoint={subscription.endpoint}\n"
        )
    return mail


def _region(arn: str) -> str:
    return arn.split(":")[3]


def deliver(
    subscription: Any, message: str, message_id: str, subject: str | None, message_structure: str | None
) -> None:
    if message_structure == "json":  # moto already picked the protocol's message (or "default")
        try:
            message = subscription._parse_message_structure(message, subscription.protocol)
        except Exception:  # moto validated the structure before; keep the raw text if not
            pass
    target = _relay
    if target is None:
        return
    mail = email_for(subscription, message, message_id, subject)
    try:
        with smtplib.SMTP(*target, timeout=10) as smtp:
            smtp.send_message(mail, from_addr=SENDER, to_addrs=[subscription.endpoint])
    except (OSError, smtplib.SMTPException) as error:
        log.warning(
            "SNS e-mail to %s for %s not sent: %s", subscription.endpoint, subscription.topic.arn, error
        )
