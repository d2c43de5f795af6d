"""One HTTP endpoint for every offline AWS service: moto underneath, our additions on top.

Requests are routed like this:

* ``/_localaws/...``: the control API (health, faults, what SES/SNS sent, the SMTP relay
  SNS e-mail subscriptions are delivered to, reset).
* a JSON-protocol request whose ``X-Amz-Target`` has a registered handler (Glue crawler
  actions, every Athena action, DynamoDB BatchWriteItem): handled here.
* everything else: moto's own server application, unchanged (S3 gets optional 503s).

Handlers that need other services (a crawl reads S3 and writes the Glue catalog; a
query reads S3) call this same endpoint through boto3 with ``internal_client``, so they
see exactly what a user's client sees. Internal calls are exempt from fault injection.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from botocore.config import Config
from werkzeug.serving import BaseWSGIServer, make_server

import localaws.cloudformation.change_sets as cloudformation
import localaws.s3.events as s3_events
import localaws.sns.email as sns_email
from localaws.errors import AwsError
from localaws.faults import FaultSettings
from localaws.iam.enforcement import IamEnforcement

log = logging.getLogger("localaws")

INTERNAL_USER_AGENT = "localaws-internal"
DEFAULT_REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

# query parameters that make a GET on an object read something other than its bytes
S3_SUBRESOURCES = {
    "acl",
    "tagging",
    "attributes",
    "retention",
    "legal-hold",
    "torrent",
    "uploadId",
    "uploads",
}

JsonHandler = Callable[[dict[str, Any]], dict[str, Any]]
ExtensionFactory = Callable[["StackContext"], "Extension"]  # an Extension subclass, usually


class Extension:
    """Something that adds behaviour to the stack (crawlers, Athena, DynamoDB limits)."""

    def __init__(self, stack: StackContext) -> None:
        self.stack = stack

    def handlers(self) -> dict[str, JsonHandler]:
        """``{"AWSGlue.StartCrawler": fn, ...}``: the JSON actions this extension answers."""
        return {}

    def reset(self) -> None:
        """Forget all state (called by ``POST /_localaws/reset``)."""

    def shutdown(self) -> None:
        """Stop background work before the server exits."""


class StackContext:
    """What handlers share: the endpoint they can call back into and the fault settings."""

    def __init__(self, faults: FaultSettings) -> None:
        self.faults = faults
        self.endpoint_url = ""
        self.app: LocalAWSApp | None = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def internal_client(self, service: str, region: str = DEFAULT_REGION) -> Any:
        key = f"{service}/{region}"
        with self._lock:
            if key not in self._clients:
                self._clients[key] = boto3.session.Session().client(
                    service,
                    endpoint_url=self.endpoint_url,
                    region_name=region,
                    config=Config(
                        user_agent_extra=INTERNAL_USER_AGENT,
                        retries={"mode": "standard", "max_attempts": 3},
                        max_pool_connections=32,
                    ),
                    **CREDENTIALS,
                )
            return self._clients[key]


def _json_response(start_response: Any, status: int, body: dict[str, Any]) -> list[bytes]:
    payload = json.dumps(body, default=str).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}
    start_response(
        f"{status} {reason.get(status, 'Error')}",
        [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(payload)))],
    )
    return [payload]


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _is_s3_request(environ: dict[str, Any]) -> bool:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    return "/s3/aws4_request" in auth or environ.get("HTTP_X_AMZ_CONTENT_SHA256") is not None


def is_internal(environ: dict[str, Any]) -> bool:
    return INTERNAL_USER_AGENT in environ.get("HTTP_USER_AGENT", "")


class LocalAWSApp:
    """The WSGI application: control API, our handlers, then moto."""

    def __init__(self, stack: StackContext, extensions: list[Extension]) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.stack = stack
        self.extensions = extensions
        self.moto_app = DomainDispatcherApplication(create_backend_app)
        self.handlers: dict[str, JsonHandler] = {}
        for extension in extensions:
            self.handlers.update(extension.handlers())

    def call_moto(self, environ: dict[str, Any], body: bytes) -> tuple[int, dict[str, Any]]:
        """Send a (possibly rewritten) JSON request to moto; answer (status, decoded body)."""
        inner = dict(environ)
        inner["wsgi.input"] = io.BytesIO(body)
        inner["CONTENT_LENGTH"] = str(len(body))
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured["status"] = int(status.split()[0])

        chunks = self.moto_app(inner, start_response)
        raw = b"".join(chunks)
        return captured["status"], (json.loads(raw) if raw else {})

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_localaws/"):
            return self._control(environ, start_response, path)
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            handler = self.handlers.get(target)
            if handler is None and target.startswith("AmazonAthena."):
                handler = self.handlers.get("AmazonAthena.*")
            if handler is not None:
                return self._handle_json(environ, start_response, target, handler)
        elif _is_s3_request(environ) and not is_internal(environ):
            if self.stack.faults.draw("s3_slowdown_rate"):
                return self._s3_slowdown(start_response)
            read = self._s3_object_read(environ)
            if read and self.stack.faults.s3_access_denied(*read):
                return self._s3_access_denied(environ, start_response)
        return self.moto_app(environ, start_response)

    def _s3_object_read(self, environ: dict[str, Any]) -> tuple[str, str] | None:
        """(bucket, key) of a GetObject / HeadObject request, path or virtual-hosted style."""
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if set(query) & S3_SUBRESOURCES:
            return None  # GetObjectAcl, GetObjectTagging, ...: not a read of the object's bytes
        path = unquote(environ.get("PATH_INFO", "")).lstrip("/")
        host = environ.get("HTTP_HOST", "").rsplit(":", 1)[0]
        own_host = urlsplit(self.stack.endpoint_url).hostname or ""
        if own_host and host.endswith("." + own_host):
            bucket, key = host[: -len(own_host) - 1], path
        else:
            bucket, _, key = path.partition("/")
        return (bucket, key) if bucket and key else None

    @staticmethod
    def _s3_access_denied(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
            b"<Message>Access Denied</Message></Error>"
        )
        if environ.get("REQUEST_METHOD") == "HEAD":
            body = b""  # S3 answers a HEAD with the status alone
        start_response(
            "403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
        )
        return [body]

    def _handle_json(
        self, environ: dict[str, Any], start_response: Any, target: str, handler: JsonHandler
    ) -> list[bytes]:
        body = _read_body(environ)
        try:
            request = json.loads(body or b"{}")
            request["__target__"] = target
            request["__environ__"] = environ
            request["__raw_body__"] = body
            return _json_response(start_response, 200, handler(request))
        except AwsError as error:
            return _json_response(
                start_response, error.status, {"__type": error.code, "message": error.message}
            )
        except Exception as error:  # a bug in a handler must not kill the server
            log.exception("handler for %s failed", target)
            return _json_response(start_response, 500, {"__type": "InternalFailure", "message": str(error)})

    @staticmethod
    def _s3_slowdown(start_response: Any) -> list[bytes]:
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message></Error>"
        )
        start_response(
            "503 Slow Down", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
        )
        return [body]

    def _control(self, environ: dict[str, Any], start_response: Any, path: str) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if path == "/_localaws/health":
                return _json_response(start_response, 200, {"status": "ok"})
            if path == "/_localaws/faults":
                if method == "POST":
                    self.stack.faults.update(json.loads(_read_body(environ) or b"{}"))
                return _json_response(start_response, 200, self.stack.faults.as_dict())
            if path == "/_localaws/sent":
                return _json_response(start_response, 200, sent_messages())
            if path == "/_localaws/smtp":
                if method == "POST":
                    relay = json.loads(_read_body(environ) or b"{}")
                    sns_email.set_relay(relay.get("host"), relay.get("port"))
                host, port = sns_email.relay() or (None, None)
                return _json_response(start_response, 200, {"host": host, "port": port})
            if path == "/_localaws/reset" and method == "POST":
                self.reset()
                return _json_response(start_response, 200, {"status": "reset"})
        except ValueError as error:
            return _json_response(start_response, 400, {"message": str(error)})
        return _json_response(start_response, 404, {"message": f"no control endpoint {path}"})

    def reset(self) -> None:
        from moto.moto_api._internal.models import moto_api_backend

        for extension in self.extensions:
            extension.reset()
        moto_api_backend.reset()
        self.stack.faults.clear()


def sent_messages() -> dict[str, list[dict[str, Any]]]:
    """Every SNS publish and SES email the stack has accepted, oldest first.

    An SNS publish with MessageStructure "json" is reported as a subscriber without a
    protocol-specific message reads it: its "default" text (the raw document in ``document``).
    """
    from moto.ses.models import ses_backends
    from moto.sns.models import sns_backends

    sns = []
    for _account, region, backend in sns_backends.iter_backends():
        for topic in backend.topics.values():
            for message_id, message, subject, attributes, _group in topic.sent_notifications:
                structured = sns_email.json_structured(message_id)
                sns.append(
                    {
                        "region": region,
                        "topic_arn": topic.arn,
                        "message_id": message_id,
                        "subject": subject,
                        "message": json.loads(message)["default"] if structured else message,
                        "document": message if structured else None,
                        "attributes": attributes or {},
                    }
                )
    ses = []
    for _account, region, backend in ses_backends.iter_backends():
        for message in backend.sent_messages:
            ses.append(
                {
                    "region": region,
                    "message_id": message.id,
                    "source": message.source,
                    "destinations": getattr(message, "destinations", None),
                    "subject": getattr(message, "subject", None),
                    "body": getattr(message, "body", getattr(message, "raw_data", None)),
                }
            )
    return {"sns": sns, "ses": ses}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalAWS:
    """Start and stop the stack in this process, on a free port unless one is given.

    The core knows no extension: they are handed in (``localaws.LocalAWS`` hands in the
    Glue crawler, Athena and DynamoDB extensions).
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        faults: FaultSettings | None = None,
        enforce_iam: bool | None = None,
        extensions: Sequence[ExtensionFactory] = (),
        smtp: tuple[str, int] | None = None,
    ):
        self.enforce_iam = enforce_iam  # None: LOCALAWS_ENFORCE_IAM decides (off by default)
        # where SNS e-mail subscriptions are delivered (localaws/sns/email.py); None: LOCALAWS_SMTP
        # (host:port) if set, else nowhere (moto only records the publish)
        if smtp is None and os.environ.get("LOCALAWS_SMTP"):
            smtp = sns_email.parse_relay(os.environ["LOCALAWS_SMTP"])
        self.smtp = smtp
        self.host = host
        self.extension_factories = tuple(extensions)
        self.port = port or free_port()
        self.stack = StackContext(faults or FaultSettings.from_env())
        self.stack.endpoint_url = self.endpoint_url
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.app: LocalAWSApp | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, log_requests: bool = False) -> LocalAWS:
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        # one log line per request is useful by hand (python -m localaws), noise in tests
        logging.getLogger("werkzeug").setLevel(logging.INFO if log_requests else logging.WARNING)
        cloudformation.install()  # change sets end with the stack's template and outputs, as in AWS
        sns_email.install()
        s3_events.install()  # a versioned bucket's delete markers notify, as in AWS
        if self.smtp is not None:
            sns_email.set_relay(*self.smtp)
        self.app = LocalAWSApp(self.stack, [make(self.stack) for make in self.extension_factories])
        self.stack.app = self.app
        self.iam = IamEnforcement(self.app, self.stack.internal_client, self.enforce_iam)
        self._server = make_server(
            self.host, self.port, self.iam, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        log.info("localaws listening on %s", self.endpoint_url)
        return self

    def stop(self) -> None:
        if self.app:
            for extension in self.app.extensions:
                extension.shutdown()
        if self.smtp is not None and sns_email.relay() == self.smtp:
            sns_email.set_relay(None)  # moto's backends outlive the server; its relay must not
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        if self._thread:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> LocalAWS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # conveniences for tests --------------------------------------------------------
    def client(self, service: str, region: str = DEFAULT_REGION) -> Any:
        return boto3.session.Session().client(
            service, endpoint_url=self.endpoint_url, region_name=region, **CREDENTIALS
        )

    def set_faults(self, **values: object) -> None:
        self.stack.faults.update(values)

    def sent(self) -> dict[str, list[dict[str, Any]]]:
        return sent_messages()

    def reset(self) -> None:
        assert self.app is not None, "start() first"
        self.app.reset()
