"""S3 event mode (``RecrawlPolicy`` ``CRAWL_EVENT_MODE``): the crawler's SQS queue of S3 events.

As Glue documents it ("Accelerating crawls using Amazon S3 event notifications"): the
bucket sends its ``s3:ObjectCreated:*`` / ``s3:ObjectRemoved:*`` events to an SQS queue
(``EventQueueArn`` of the crawler's one target); after a first crawl that lists the whole
target, each crawl takes the events queued since and lists and reads only the folders they
name; with no event queued the crawl stops there, having read nothing. A removed object's
folder is listed too, so a partition whose objects are all gone is seen as deleted (logged,
or deleted from the catalog, as the ``DeleteBehavior`` says). At most 100,000 messages are
consumed per crawl. Messages are deleted once the crawl has written the catalog; a failed
crawl leaves them to the next one (after the queue's visibility timeout).

The crawl's SQS calls, made as the crawler's role (checked by ``localaws.iam.enforcement``
at StartCrawler): ``sqs:GetQueueUrl``, ``sqs:GetQueueAttributes`` (are events queued at
all), ``sqs:ReceiveMessage`` (and ``kms:Decrypt`` on an
encrypted queue), ``sqs:DeleteMessage`` and ``sqs:PurgeQueue``: a crawl that lists the whole
target (the first, or the first after an UpdateCrawler) first purges the events queued so
far, which the listing makes redundant; the listing comes after, so an object written
meanwhile is listed, or queued, or both. (On AWS a purge may also drop a message sent in
the minute it takes; an object written then, in a folder the listing had already passed,
is cataloged by its next event; the traffic writers register their partitions anyway.)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from localaws.glue.schema import CrawlFailed

log = logging.getLogger("localaws.glue")

MAX_MESSAGES_PER_CRAWL = 100_000
CREATED, REMOVED = "ObjectCreated", "ObjectRemoved"


@dataclass(frozen=True)
class ObjectEvent:
    """One S3 event record: ObjectCreated:* or ObjectRemoved:* of s3://bucket/key."""

    kind: str
    bucket: str
    key: str


@dataclass
class QueuedEvents:
    """What one crawl took from the queue: the object events and the messages to delete after."""

    events: list[ObjectEvent] = field(default_factory=list)
    receipts: list[str] = field(default_factory=list)
    messages: int = 0
    unreadable: int = 0  # left in the queue (its redrive policy parks them in the DLQ)


def object_events(body: str) -> list[ObjectEvent] | None:
    """The object events of one message body; [] for an S3 test event; None if it is no S3 event."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    if document.get("Event") == "s3:TestEvent":
        return []  # sent once when the notification is configured; nothing to crawl
    if "Records" not in document:
        return None
    events = []
    for record in document["Records"]:
        name = str(record.get("eventName", ""))
        kind = name.split(":", 1)[0]
        if kind not in (CREATED, REMOVED):
            continue
        s3 = record.get("s3") or {}
        bucket, key = (s3.get("bucket") or {}).get("name"), (s3.get("object") or {}).get("key")
        if bucket and key:
            events.append(ObjectEvent(kind, bucket, unquote_plus(key)))  # keys arrive URL-encoded
    return events


def changed_folders(events: list[ObjectEvent], location: str, depth: int | None) -> set[str]:
    """The folders (``prefix/`` keys) under ``location`` the events name.

    ``depth``: the table's number of partition keys: an object's folder is its first
    ``depth`` levels under the location (a key at another depth is not the table's data).
    None (an S3 target, its table not known yet): the folder the object is in.
    """
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
    folders = set()
    for event in events:
        if event.bucket != bucket or not event.key.startswith(prefix):
            continue
        relative = event.key[len(prefix) :]
        levels = relative.split("/")[:-1]
        if depth is None:
            folder = "/".join(levels)
        elif len(levels) == depth:
            folder = "/".join(levels)
        else:
            continue
        folders.add(prefix + folder + "/" if folder else prefix)
    return folders


class EventQueue:
    """The crawler's queue, through an SQS client of the stack."""

    def __init__(self, sqs: Any, arn: str) -> None:
        self.sqs, self.arn = sqs, arn
        _arn, _partition, _service, _region, account, name = arn.split(":")
        try:
            self.url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        except ClientError as error:
            raise CrawlFailed(f"the crawler's event queue {arn} cannot be used: {error}") from error

    def take(self, limit: int = MAX_MESSAGES_PER_CRAWL) -> QueuedEvents:
        """Receive every message queued (at most ``limit``), without deleting them yet."""
        taken = QueuedEvents()
        queued = self.sqs.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        if queued["Attributes"].get("ApproximateNumberOfMessages") == "0":
            return taken  # no event queued: the crawl stops here, having read nothing
        while taken.messages < limit:
            batch = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=min(10, limit - taken.messages), WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                taken.messages += 1
                events = object_events(message["Body"])
                if events is None:
                    taken.unreadable += 1
                    log.warning("event queue %s: message %s is not an S3 event, left in the queue",
                                self.arn, message["MessageId"])  # fmt: skip
                    continue
                taken.events += events
                taken.receipts.append(message["ReceiptHandle"])
        return taken

    def delete(self, receipts: list[str]) -> None:
        for start in range(0, len(receipts), 10):
            entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts[start : start + 10])]
            failed = self.sqs.delete_message_batch(QueueUrl=self.url, Entries=entries).get("Failed", [])
            for failure in failed:
                log.warning("event queue %s: a consumed message was not deleted: %s", self.arn, failure)

    def discard_queued(self) -> None:
        """Before a crawl lists the whole target: the events queued so far are redundant.

        PurgeQueue, as one call (SQS allows one a minute; within that minute of an earlier
        purge, the messages are received and deleted instead). Receiving them all would be
        quadratic in moto, whose every ReceiveMessage recounts the whole queue."""
        try:
            self.sqs.purge_queue(QueueUrl=self.url)
        except self.sqs.exceptions.PurgeQueueInProgress:
            taken = self.take()
            self.delete(taken.receipts)
