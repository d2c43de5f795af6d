"""Glue crawlers that really crawl: S3 files in, Glue Data Catalog tables and partitions out.

moto's crawler crawls nothing, only advances on ListCrawls and answers UpdateCrawler
with a 500. Here every crawler action behaves like AWS (this module: the API and the
crawler's state machine), and StartCrawler runs a crawl (``glue_crawl.py``, on the pure
inference of ``glue_schema.py``) in a background thread:

1. list the objects under each S3 target (honouring ``Exclusions`` globs, skipping
   ``_``/``.`` files as Glue does);
2. read the schema of each file (JSON lines, optionally gzip; CSV with a header;
   Parquet) and merge the schemas (int + double -> double, anything else that
   disagrees -> string, as Glue does);
3. turn the folder levels under the target into partition keys: ``key=value`` folders
   keep their key, plain folders become ``partition_0``, ``partition_1``, ...;
4. create or update the table (``TablePrefix`` + the target's last folder name) in the
   crawler's database and register every partition not yet in the catalog.

The recrawl and schema-change policies are Glue's, checked as strictly as Glue checks
them (``check_policies``: a configuration Glue refuses is refused, with Glue's message):
``RecrawlPolicy`` ``CRAWL_NEW_FOLDERS_ONLY`` reads only the folders no successful crawl of
this crawler has read before (an incremental crawl: what it reads does not grow with
history; it requires ``SchemaChangePolicy`` LOG/LOG; Glue refuses it on a catalog target),
``CRAWL_EVENT_MODE`` (S3 event mode, on one S3 or catalog target with its ``EventQueueArn``)
lists and reads only the folders named by the S3 events queued since the last crawl
(``glue/events.py``; a catalog target allows only LOG or DELETE_FROM_DATABASE deletes),
``UpdateBehavior`` LOG leaves an
existing table's schema as declared, and the crawler ``Configuration``
``CrawlerOutput.Partitions.AddOrUpdateBehavior = InheritFromTable`` gives new partitions
the table's storage (columns, SerDe) instead of what the crawl inferred.

To keep a crawl of thousands of files quick, the schema is read from at most
``LOCALAWS_CRAWL_SAMPLE_FILES`` files per partition (default 2) and the first
``LOCALAWS_CRAWL_SAMPLE_LINES`` lines of a text file (default 2000); every partition is
still listed and registered. A crawl lasts at least ``LOCALAWS_CRAWL_MIN_SECONDS``
(default 1) so that code waiting for a crawler is really exercised.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from localaws.errors import AwsError
from localaws.glue.crawl import CrawlRun
from localaws.glue.events import EventQueue
from localaws.glue.schema import CrawlFailed, env_float
from localaws.server import Extension, JsonHandler

log = logging.getLogger("localaws.glue")


# --- the crawler service ----------------------------------------------------------------


@dataclass
class Crawl:
    crawl_id: str
    start_time: float
    state: str = "RUNNING"
    end_time: float | None = None
    error_message: str | None = None
    summary: dict[str, int] = field(default_factory=dict)


@dataclass
class Crawler:
    definition: dict[str, Any]
    creation_time: float
    last_updated: float
    version: int = 1
    state: str = "READY"
    crawls: list[Crawl] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    tables_created: int = 0
    tables_updated: int = 0
    # S3 folders (s3://bucket/prefix/) read by this crawler's successful crawls: what an
    # incremental (CRAWL_NEW_FOLDERS_ONLY) crawl skips
    crawled_folders: set[str] = field(default_factory=set)
    # CRAWL_EVENT_MODE: a crawl listing the whole target succeeded since the crawler was
    # created or updated, so crawls take their folders from the event queue
    event_mode_ready: bool = False

    @property
    def name(self) -> str:
        return self.definition["Name"]

    def describe(self) -> dict[str, Any]:
        out = {k: v for k, v in self.definition.items() if k != "Tags"}
        out.setdefault(
            "SchemaChangePolicy",
            {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "DEPRECATE_IN_DATABASE"},
        )
        out.setdefault("RecrawlPolicy", {"RecrawlBehavior": "CRAWL_EVERYTHING"})
        out.setdefault("LineageConfiguration", {"CrawlerLineageSettings": "DISABLE"})
        out.setdefault("Classifiers", [])
        out.update(
            State=self.state,
            CreationTime=self.creation_time,
            LastUpdated=self.last_updated,
            Version=self.version,
            CrawlElapsedTime=0,
        )
        finished = [c for c in self.crawls if c.end_time is not None]
        if self.state == "RUNNING" and self.crawls:
            out["CrawlElapsedTime"] = int((time.time() - self.crawls[-1].start_time) * 1000)
        if finished:
            last = finished[-1]
            out["LastCrawl"] = {
                "Status": last.state,
                "StartTime": last.start_time,
                "LogGroup": "/aws-glue/crawlers",
                "LogStream": self.name,
                "MessagePrefix": last.crawl_id,
            }
            if last.error_message:
                out["LastCrawl"]["ErrorMessage"] = last.error_message
        return out


CRAWLER_FIELDS = {
    "Name", "Role", "DatabaseName", "Description", "Targets", "Schedule", "Classifiers",
    "TablePrefix", "SchemaChangePolicy", "RecrawlPolicy", "LineageConfiguration",
    "LakeFormationConfiguration", "Configuration", "CrawlerSecurityConfiguration", "Tags",
}  # fmt: skip


RECRAWL_BEHAVIORS = ("CRAWL_EVERYTHING", "CRAWL_NEW_FOLDERS_ONLY", "CRAWL_EVENT_MODE")
UPDATE_BEHAVIORS = ("LOG", "UPDATE_IN_DATABASE")
DELETE_BEHAVIORS = ("LOG", "DELETE_FROM_DATABASE", "DEPRECATE_IN_DATABASE")


def check_policies(definition: dict[str, Any]) -> None:
    """Refuse what Glue's CreateCrawler/UpdateCrawler refuse about the recrawl and schema-change policies."""
    recrawl = (definition.get("RecrawlPolicy") or {}).get("RecrawlBehavior", "CRAWL_EVERYTHING")
    policy = definition.get("SchemaChangePolicy") or {}
    update = policy.get("UpdateBehavior", "UPDATE_IN_DATABASE")
    delete = policy.get("DeleteBehavior", "DEPRECATE_IN_DATABASE")
    for name, value, allowed in (
        ("RecrawlPolicy.RecrawlBehavior", recrawl, RECRAWL_BEHAVIORS),
        ("SchemaChangePolicy.UpdateBehavior", update, UPDATE_BEHAVIORS),
        ("SchemaChangePolicy.DeleteBehavior", delete, DELETE_BEHAVIORS),
    ):
        if value not in allowed:
            raise AwsError(
                "ValidationException",
                f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(allowed)}]",
            )
    targets = definition.get("Targets") or {}
    s3_targets = targets.get("S3Targets") or []
    catalog_targets = targets.get("CatalogTargets") or []
    if recrawl == "CRAWL_NEW_FOLDERS_ONLY" and (update, delete) != ("LOG", "LOG"):
        raise AwsError(
            "InvalidInputException",
            'The SchemaChangePolicy for "Crawl new folders only" Amazon S3 target can have only LOG '
            "DeleteBehavior value and LOG UpdateBehavior value.",
        )
    if catalog_targets and delete == "DEPRECATE_IN_DATABASE":
        # a catalog target's tables are the user's: Glue deletes or logs, never deprecates them
        raise AwsError(
            "InvalidInputException",
            "The SchemaChangePolicy for Catalog targets can have only LOG or DELETE_FROM_DATABASE "
            "DeleteBehavior value.",
        )
    if recrawl == "CRAWL_NEW_FOLDERS_ONLY" and catalog_targets:
        raise AwsError(
            "InvalidInputException", f"{recrawl} is only supported for crawlers with Amazon S3 targets"
        )
    if recrawl == "CRAWL_EVENT_MODE":
        _check_event_mode(s3_targets, catalog_targets, targets)
    configuration = definition.get("Configuration")
    if configuration:
        try:
            json.loads(configuration)
        except (TypeError, ValueError) as error:
            raise AwsError("InvalidInputException", f"Crawler configuration not valid: {error}") from error


def _check_event_mode(s3_targets: list[dict[str, Any]], catalog_targets: list[dict[str, Any]],
                      targets: dict[str, Any]) -> None:  # fmt: skip
    """What Glue requires of an S3 event mode crawler ("Accelerating crawls using Amazon S3 event
    notifications"): one target, an S3 folder or one database's catalog tables, each with the
    SQS queue its events arrive on (EventQueueArn, a valid SQS ARN; DlqEventQueueArn optional)."""
    others = [
        kind for kind, value in targets.items() if value and kind not in ("S3Targets", "CatalogTargets")
    ]
    if others or len(s3_targets) + len(catalog_targets) != 1:
        raise AwsError(
            "InvalidInputException", "CRAWL_EVENT_MODE supports a single Amazon S3 or Data Catalog target"
        )
    (target,) = s3_targets or catalog_targets
    if not target.get("EventQueueArn"):
        raise AwsError("InvalidInputException", "EventQueueArn is required for CRAWL_EVENT_MODE")
    for field_name in ("EventQueueArn", "DlqEventQueueArn"):
        arn = target.get(field_name)
        if arn is not None and not _is_sqs_arn(arn):
            raise AwsError("InvalidInputException", f"{field_name} {arn} is not a valid Amazon SQS ARN")
    if s3_targets and s3_targets[0].get("Path", "").rstrip("/") in ("s3:/", "s3://%", ""):
        raise AwsError("InvalidInputException", "CRAWL_EVENT_MODE does not support the path s3://%")


def _event_target(definition: dict[str, Any]) -> dict[str, Any]:
    """An event mode crawler's one target (check_policies made sure there is exactly one)."""
    targets = definition.get("Targets") or {}
    return ((targets.get("S3Targets") or []) + (targets.get("CatalogTargets") or []))[0]


def _arn_region(arn: str) -> str:
    return arn.split(":")[3]


def _is_sqs_arn(arn: str) -> bool:
    parts = arn.split(":")
    return (
        len(parts) == 6
        and parts[:3] == ["arn", parts[1], "sqs"]
        and parts[1].startswith("aws")
        and all(parts[3:])
    )


class GlueCrawlerExtension(Extension):
    def __init__(self, stack: Any) -> None:
        super().__init__(stack)
        self.crawlers: dict[str, Crawler] = {}
        self.lock = threading.RLock()
        self.threads: list[threading.Thread] = []

    def handlers(self) -> dict[str, JsonHandler]:
        actions = {
            "CreateCrawler": self.create_crawler,
            "GetCrawler": self.get_crawler,
            "GetCrawlers": self.get_crawlers,
            "BatchGetCrawlers": self.batch_get_crawlers,
            "ListCrawlers": self.list_crawlers,
            "UpdateCrawler": self.update_crawler,
            "DeleteCrawler": self.delete_crawler,
            "StartCrawler": self.start_crawler,
            "StopCrawler": self.stop_crawler,
            "ListCrawls": self.list_crawls,
            "GetCrawlerMetrics": self.get_crawler_metrics,
        }
        return {f"AWSGlue.{action}": handler for action, handler in actions.items()}

    def reset(self) -> None:
        self.shutdown()
        with self.lock:
            self.crawlers.clear()

    def shutdown(self) -> None:
        with self.lock:
            for crawler in self.crawlers.values():
                crawler.cancel.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self.threads = []

    # -- definitions --------------------------------------------------------------------

    def _crawler(self, name: str) -> Crawler:
        crawler = self.crawlers.get(name)
        if crawler is None:
            raise AwsError("EntityNotFoundException", f"Crawler entry with name {name} does not exist")
        return crawler

    @staticmethod
    def _definition(request: dict[str, Any]) -> dict[str, Any]:
        definition = {k: v for k, v in request.items() if k in CRAWLER_FIELDS}
        targets = definition.get("Targets") or {}
        if not any(
            targets.get(kind) for kind in ("S3Targets", "JdbcTargets", "CatalogTargets", "DynamoDBTargets")
        ):
            raise AwsError("InvalidInputException", "Crawler targets must not be empty")
        return definition

    def create_crawler(self, request: dict[str, Any]) -> dict[str, Any]:
        definition = self._definition(request)
        if not definition.get("Name") or not definition.get("Role"):
            raise AwsError("InvalidInputException", "Name and Role are required")
        check_policies(definition)
        with self.lock:
            if definition["Name"] in self.crawlers:
                raise AwsError("AlreadyExistsException", f"{definition['Name']} already exists")
            now = time.time()
            self.crawlers[definition["Name"]] = Crawler(definition, creation_time=now, last_updated=now)
        return {}

    def update_crawler(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            crawler = self._crawler(request.get("Name", ""))
            if crawler.state != "READY":
                raise AwsError(
                    "CrawlerRunningException", f"Crawler with name {crawler.name} has already started"
                )
            changes = {k: v for k, v in request.items() if k in CRAWLER_FIELDS and k != "Name"}
            check_policies({**crawler.definition, **changes})  # as updated, before anything changes
            crawler.definition.update(changes)
            crawler.event_mode_ready = False  # as Glue: after an update, the next crawl lists everything
            crawler.version += 1
            crawler.last_updated = time.time()
        return {}

    def delete_crawler(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            crawler = self._crawler(request.get("Name", ""))
            if crawler.state != "READY":
                raise AwsError("CrawlerRunningException", f"Crawler with name {crawler.name} is running")
            del self.crawlers[crawler.name]
        return {}

    def get_crawler(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {"Crawler": self._crawler(request.get("Name", "")).describe()}

    def get_crawlers(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {"Crawlers": [c.describe() for c in self.crawlers.values()]}

    def batch_get_crawlers(self, request: dict[str, Any]) -> dict[str, Any]:
        names = request.get("CrawlerNames", [])
        with self.lock:
            return {
                "Crawlers": [self.crawlers[n].describe() for n in names if n in self.crawlers],
                "CrawlersNotFound": [n for n in names if n not in self.crawlers],
            }

    def list_crawlers(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {"CrawlerNames": sorted(self.crawlers)}

    def list_crawls(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            crawler = self._crawler(request.get("CrawlerName", ""))
            crawls = []
            for crawl in reversed(crawler.crawls):
                state = {"SUCCEEDED": "COMPLETED", "CANCELLED": "STOPPED"}.get(crawl.state, crawl.state)
                item = {"CrawlId": crawl.crawl_id, "State": state, "StartTime": crawl.start_time}
                if crawl.end_time:
                    item["EndTime"] = crawl.end_time
                    item["Summary"] = json.dumps(crawl.summary)
                if crawl.error_message:
                    item["ErrorMessage"] = crawl.error_message
                crawls.append(item)
            return {"Crawls": crawls[: int(request.get("MaxResults", 1000))]}

    def get_crawler_metrics(self, request: dict[str, Any]) -> dict[str, Any]:
        names = request.get("CrawlerNameList") or list(self.crawlers)
        metrics = []
        with self.lock:
            for name in names:
                crawler = self.crawlers.get(name)
                if crawler is None:
                    continue
                finished = [c for c in crawler.crawls if c.end_time]
                metrics.append(
                    {
                        "CrawlerName": name,
                        "StillEstimating": False,
                        "TimeLeftSeconds": 0.0,
                        "LastRuntimeSeconds": (finished[-1].end_time - finished[-1].start_time)
                        if finished
                        else 0.0,
                        "MedianRuntimeSeconds": (finished[-1].end_time - finished[-1].start_time)
                        if finished
                        else 0.0,
                        "TablesCreated": crawler.tables_created,
                        "TablesUpdated": crawler.tables_updated,
                        "TablesDeleted": 0,
                    }
                )
        return {"CrawlerMetricsList": metrics}

    # -- running --------------------------------------------------------------------------

    def start_crawler(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            crawler = self._crawler(request.get("Name", ""))
            if crawler.state != "READY":
                raise AwsError(
                    "CrawlerRunningException", f"Crawler with name {crawler.name} has already started"
                )
            crawler.state = "RUNNING"
            crawler.cancel.clear()
            crawl = Crawl(crawl_id=str(uuid.uuid4()), start_time=time.time())
            crawler.crawls.append(crawl)
            thread = threading.Thread(
                target=self._run, args=(crawler, crawl), name=f"crawl-{crawler.name}", daemon=True
            )
            self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()
        return {}

    def stop_crawler(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            crawler = self._crawler(request.get("Name", ""))
            if crawler.state == "READY":
                raise AwsError(
                    "CrawlerNotRunningException", f"Crawler with name {crawler.name} isn't running"
                )
            if crawler.state == "STOPPING":
                raise AwsError("CrawlerStoppingException", f"Crawler with name {crawler.name} is stopping")
            crawler.state = "STOPPING"
            crawler.cancel.set()
        return {}

    def _run(self, crawler: Crawler, crawl: Crawl) -> None:
        min_seconds = env_float("LOCALAWS_CRAWL_MIN_SECONDS", 1.0)
        status, error = "SUCCEEDED", None
        try:
            recrawl = (crawler.definition.get("RecrawlPolicy") or {}).get("RecrawlBehavior")
            queue, taken = None, None
            if recrawl == "CRAWL_EVENT_MODE":
                target = _event_target(crawler.definition)
                queue = EventQueue(self.stack.internal_client("sqs", _arn_region(target["EventQueueArn"])),
                                   target["EventQueueArn"])  # fmt: skip
                if crawler.event_mode_ready:
                    taken = queue.take()
                    log.info("crawler %s: the crawl is running by consuming Amazon S3 events (%d message(s), "
                             "%d object event(s))", crawler.name, taken.messages, len(taken.events))  # fmt: skip
                else:
                    queue.discard_queued()
                    log.info("crawler %s: the crawl is not running in S3 event mode: listing the whole target "
                             "(the queued events purged first)", crawler.name)  # fmt: skip
            run = CrawlRun(
                self.stack.internal_client("glue"),
                self.stack.internal_client("s3"),
                crawler.name,
                crawler.definition,
                crawler.cancel,
                skip_folders=set(crawler.crawled_folders) if recrawl == "CRAWL_NEW_FOLDERS_ONLY" else None,
                events=taken.events if taken is not None else None,
            )
            crawl.summary = run.run()
            if taken is not None:
                crawl.summary.update(
                    EventMessagesConsumed=len(taken.receipts), EventMessagesUnreadable=taken.unreadable
                )
                if not crawler.cancel.is_set():
                    queue.delete(taken.receipts)  # consumed only once the catalog is written
            with self.lock:
                crawler.tables_created += crawl.summary["TablesCreated"]
                crawler.tables_updated += crawl.summary["TablesUpdated"]
                if not crawler.cancel.is_set():
                    crawler.crawled_folders |= run.folders_read
                    crawler.event_mode_ready = recrawl == "CRAWL_EVENT_MODE"
        except CrawlFailed as failure:
            status, error = "FAILED", str(failure)
        except AwsError as failure:
            status, error = "FAILED", f"{failure.code}: {failure.message}"
        except Exception as failure:  # an unexpected error is a failed crawl, not a dead thread
            log.exception("crawler %s failed", crawler.name)
            status, error = "FAILED", f"Internal Service Exception: {failure}"
        remaining = min_seconds - (time.time() - crawl.start_time)
        if remaining > 0:
            crawler.cancel.wait(remaining)
        with self.lock:
            if crawler.cancel.is_set() and status == "SUCCEEDED":
                status = "CANCELLED"
            crawler.state = "STOPPING"
        time.sleep(min(0.2, min_seconds / 5))
        with self.lock:
            crawl.state, crawl.error_message, crawl.end_time = status, error, time.time()
            crawler.state = "READY"
        log.info("crawler %s finished: %s %s", crawler.name, status, error or "")
