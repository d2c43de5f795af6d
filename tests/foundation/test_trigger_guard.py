"""The trigger middleware decides on the headers before it reads a body (pipelines.trigger_guard).

Driven directly as ASGI, with an app that records what reached it and a receive that counts
what was read. The same guarantees on a running api-server, with a concurrent health probe:
tests/foundation/test_conf_check.py.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from pipelines import trigger_guard
from pipelines.trigger_guard import MAX_TRIGGER_BODY, UndeclaredConfGuard, collect_body

MIB = 1024 * 1024
CHUNK = 64 * 1024
PATH = "/api/v2/dags/market_orders/dagRuns"


class Client:
    """The ASGI receive side of a client that would send ``total`` bytes in 64 KiB chunks."""

    def __init__(self, total: int, body: bytes | None = None):
        self.total, self.body, self.read = total, body, 0

    async def receive(self) -> dict:
        if self.body is not None:
            self.read += len(self.body)
            return {"type": "http.request", "body": self.body, "more_body": False}
        size = min(CHUNK, self.total - self.read)
        self.read += size
        return {"type": "http.request", "body": b"x" * size, "more_body": self.read < self.total}


class AirflowStandIn:
    """Reads the whole body as FastAPI does, then answers like Airflow: 401 without a user."""

    def __init__(self):
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send):
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        self.bodies.append(b"".join(chunks))
        status = 200 if (b"authorization", b"Bearer good") in scope["headers"] else 401
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def call(headers: list[tuple[bytes, bytes]], client: Client) -> tuple[int, AirflowStandIn, bytes]:
    app = AirflowStandIn()
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": PATH, "headers": headers, "query_string": b""}
    asyncio.run(UndeclaredConfGuard(app)(scope, client.receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], app, body


@pytest.fixture
def token_users(monkeypatch):
    """Airflow's validator stood in for: "good" is a user, anything else is refused."""

    async def user_of(token):
        return {"name": "op"} if token == "good" else None

    monkeypatch.setattr(trigger_guard, "_user_of", user_of)
    monkeypatch.setattr(trigger_guard, "_anonymous_access_possible", lambda: False)
    monkeypatch.setattr(trigger_guard, "_may_trigger", lambda user, dag_id: True)
    monkeypatch.setattr(trigger_guard, "_declared_params", lambda dag_id: ["region_id"])


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"authorization", b"Bearer forged.jwt.value")],
        [(b"cookie", b"_token=expired.jwt.value")],
        [(b"authorization", b"Basic b3A6b3A=")],
    ],
)
def test_without_a_valid_token_airflow_answers_and_no_byte_of_the_body_is_read(token_users, headers):
    client = Client(total=64 * MIB)
    status, app, _ = call([(b"content-length", str(64 * MIB).encode()), *headers], client)
    assert status == 401  # Airflow's own answer, from the headers
    assert client.read == 0 and app.bodies == [b""]


def test_a_declared_length_over_the_limit_is_413_before_any_byte_is_read(token_users):
    client = Client(total=64 * MIB)
    headers = [(b"authorization", b"Bearer good"), (b"content-length", str(64 * MIB).encode())]
    status, app, body = call(headers, client)
    assert status == 413 and b"at most 1,048,576 bytes" in body
    assert client.read == 0 and app.bodies == []


def test_a_chunked_body_is_refused_as_soon_as_it_grows_past_the_limit(token_users):
    client = Client(total=64 * MIB)  # no Content-Length: counted as it arrives
    status, app, _ = call([(b"authorization", b"Bearer good")], client)
    assert status == 413 and app.bodies == []
    assert MIB < client.read <= MIB + CHUNK  # read up to the first chunk past 1 MiB, no further


def test_a_body_of_exactly_the_limit_reaches_airflow_whole(token_users):
    client = Client(total=MAX_TRIGGER_BODY)
    status, app, _ = call([(b"authorization", b"Bearer good")], client)
    assert status == 200 and app.bodies == [b"x" * MAX_TRIGGER_BODY]


def test_an_undeclared_key_from_a_valid_token_is_still_refused_with_400(token_users):
    body = json.dumps({"conf": {"regionid": 1}}).encode()
    status, app, answer = call([(b"authorization", b"Bearer good")], Client(len(body), body))
    assert status == 400 and "'regionid' (did you mean 'region_id'?)" in json.loads(answer)["detail"]
    body = json.dumps({"conf": {"region_id": 1}}).encode()
    status, app, _ = call([(b"authorization", b"Bearer good")], Client(len(body), body))
    assert status == 200 and app.bodies == [body]  # replayed as received


def test_with_anonymous_access_a_tokenless_body_is_capped_and_passed_on(token_users, monkeypatch):
    # the simple auth manager's all-admins mode, FAB's public role: Airflow may let it in
    monkeypatch.setattr(trigger_guard, "_anonymous_access_possible", lambda: True)
    body = json.dumps({"conf": {"region_id": 1}}).encode()
    status, app, _ = call([], Client(len(body), body))
    assert app.bodies == [body] and status == 401  # the stand-in's answer: it saw the body
    status, app, _ = call([(b"content-length", str(2 * MIB).encode())], Client(2 * MIB))
    assert status == 413 and app.bodies == []


def test_the_body_is_collected_in_linear_time():
    # 64 MiB in 4 KiB chunks: `body += chunk` copies ~512 GiB in all; a list joined once, 64 MiB
    total, piece = 64 * MIB, b"y" * 4096
    count = 0

    async def receive():
        nonlocal count
        count += 1
        return {"type": "http.request", "body": piece, "more_body": count < total // len(piece)}

    started = time.process_time()  # this process's CPU: other processes on the machine don't count
    _, body = asyncio.run(collect_body(receive, total))
    elapsed = time.process_time() - started
    assert len(body) == total
    assert elapsed < 2.0, f"collecting 64 MiB took {elapsed:.2f} s of CPU"


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ([(b"authorization", b"Bearer abc")], "abc"),
        ([(b"authorization", b"bearer  abc ")], "abc"),
        ([(b"authorization", b"Bearer "), (b"cookie", b"a=1; _token=xyz")], "xyz"),
        ([(b"authorization", b"Basic Zm9v"), (b"cookie", b"_token=xyz")], "xyz"),
        ([(b"cookie", b'bad"cookie')], None),
        ([], None),
    ],
)
def test_the_token_is_taken_as_airflow_takes_it(headers, token):
    assert trigger_guard._token(dict(headers)) == token
