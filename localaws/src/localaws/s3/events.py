"""S3 event notifications for delete markers, as AWS sends them.

moto sends a bucket's configured notifications for PutObject, CopyObject,
CompleteMultipartUpload and for deletes in an unversioned bucket, but in a versioned
bucket a DeleteObject (or a DeleteObjects entry) without a version id only adds a delete
marker and notifies nobody. AWS sends ``s3:ObjectRemoved:DeleteMarkerCreated`` for it, which
a configuration on ``s3:ObjectRemoved:*`` receives: the data lake is versioned, and the
traffic writers retire old files with plain deletes, so without this event a queue
consumer (an S3 event mode crawler) would never hear of a removed object.

:func:`install` wraps moto's ``S3Backend.delete_object`` once per process (its backends are
global); ``delete_objects`` goes through it too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

_installed = False
_lock = threading.Lock()


@dataclass(frozen=True)
class _DeleteMarker:
    """What moto's event builder reads of a key (a delete marker has no size nor ETag)."""

    name: str
    size: int = 0
    etag: str = ""


def install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        from moto.s3 import notifications
        from moto.s3.models import S3Backend

        original = S3Backend.delete_object

        def delete_object(
            self: Any, bucket_name: str, key_name: str, version_id: str | None = None, bypass: bool = False
        ) -> tuple[bool, dict[str, Any]]:
            deleted, meta = original(self, bucket_name, key_name, version_id=version_id, bypass=bypass)
            if deleted and version_id is None and meta.get("delete-marker") == "true":
                bucket = self.get_bucket(bucket_name)
                notifications.send_event(
                    self.account_id,
                    notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT,
                    bucket,
                    _DeleteMarker(key_name),
                )
            return deleted, meta

        S3Backend.delete_object = delete_object
        _installed = True
