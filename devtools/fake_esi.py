"""A fake EVE ESI market-orders server for dev, demo, tests and benchmarks.

``GET|HEAD /latest/markets/{region_id}/orders/?order_type=all|buy|sell&page=N`` (also
without ``/latest``) answers 1000 orders a page with ESI's headers (X-Pages,
Last-Modified, Expires, ETag, X-ESI-Error-Limit-Remain/-Reset). Orders are
deterministic by (seed, region, snapshot): thousands of type ids with Zipf-like
popularity, buy and sell with a price spread per type, many stations.

Configurable: ``pages`` per region, ``latency`` (seconds per request), ``fault_rate``
(share of requests answered 500/502/503, a timeout or a truncated body), an error
budget (every error response costs one; at zero ESI answers 420 until the window
resets), ``rollover_after`` (the snapshot is replaced after N page requests),
``snapshot_seconds`` (the snapshot is replaced every N seconds of wall time, as ESI's is
every 300), ``malformed_pages`` (a page's body replaced, e.g. page 1 by ``[]``),
``omit_headers`` (e.g. ``{"X-Pages"}``, as a broken proxy may) and unknown regions
answered 404. ``Expires`` is wall-clock time: when the snapshot served is replaced.

``POST /universe/names/`` (also under ``/latest``) resolves type ids as ESI does
(``[{"id", "name", "category": "inventory_type"}]``, at most 1000 ids, 400 otherwise),
with the real names of ``eve_type_names.json`` beside this file (provenance in
sample_data/market/PROVENANCE.md). The fake trades thousands of ids it has no real name
for: by default it leaves those out of the answer (the client shows such a type by its
id); ``strict_names=True`` answers 404 for the whole request instead, as ESI does for an
id that is not valid. ``names_requests`` records the ids of each names request. The
fault options apply to the market pages only; ``names_status`` (e.g. 503) answers every
names request with that error instead.

    python -m devtools.fake_esi --port 8090 --pages 40 --latency 0.05
"""

from __future__ import annotations

import argparse
import json
import math
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ORDERS_PER_PAGE = 1000
TYPE_COUNT = 4000
KNOWN_REGIONS = range(10_000_001, 10_000_070)
TYPE_NAMES_FILE = Path(__file__).with_name("eve_type_names.json")
NAMES_PER_REQUEST = 1000  # ESI's limit for POST /universe/names/


def real_type_names() -> dict[int, str]:
    """The real EVE type names the fake serves (``eve_type_names.json``)."""
    return {int(k): v for k, v in json.loads(TYPE_NAMES_FILE.read_text())["names"].items()}


class FakeEsi:
    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        seed: int = 1,
        pages: int = 20,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        timeout_seconds: float = 3.0,
        error_budget: int = 100,
        error_window: float = 60.0,
        rollover_after: int | None = None,
        malformed_pages: dict[int, str] | None = None,
        snapshot_seconds: float | None = None,
        omit_headers: set[str] | frozenset[str] = frozenset(),
        type_names: dict[int, str] | None = None,
        strict_names: bool = False,
    ) -> None:
        self.host, self.port = host, port
        self.seed, self.pages, self.latency = seed, pages, latency
        self.fault_rate, self.timeout_seconds = fault_rate, timeout_seconds
        self.error_budget, self.error_window = error_budget, error_window
        self.rollover_after = rollover_after
        self.malformed_pages = malformed_pages or {}
        self.snapshot_seconds = snapshot_seconds
        self.omit_headers = set(omit_headers)
        self.type_names = real_type_names() if type_names is None else dict(type_names)
        self.strict_names = strict_names
        self.names_status: int | None = None
        self.names_requests: list[list[int]] = []  # the ids asked, request by request
        self.snapshot = 0  # snapshots replaced by request count (rollover_after) or by hand
        self.clock_start = float(math.floor(time.time()))  # whole seconds: HTTP dates have no fraction
        self.requests = 0
        self.faults_served = 0
        self.remain = error_budget
        self.window_started = time.monotonic()
        self.lock = threading.Lock()
        self._random = random.Random(seed * 7919)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._base_time = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        self._bodies: dict[tuple[int, int, int, str], bytes] = {}

    def current_snapshot(self, now: float | None = None) -> tuple[int, float]:
        """(snapshot served now, wall time at which ESI replaces it)."""
        now = time.time() if now is None else now
        if self.snapshot_seconds:
            ticks = int((now - self.clock_start) // self.snapshot_seconds)
            return self.snapshot + ticks, self.clock_start + (ticks + 1) * self.snapshot_seconds
        # replaced only by rollover_after or by hand: always five minutes from being replaced
        return self.snapshot, now + 300

    # -- data ---------------------------------------------------------------------------

    def last_modified(self, snapshot: int | None = None) -> datetime:
        return self._base_time + timedelta(minutes=5 * (self.snapshot if snapshot is None else snapshot))

    def orders(self, region: int, page: int, snapshot: int, order_type: str = "all") -> list[dict]:
        rng = random.Random(hash((self.seed, region, snapshot, page)) & 0xFFFFFFFF)
        orders = []
        for index in range(ORDERS_PER_PAGE):
            type_id = 18 + int(TYPE_COUNT * (rng.random() ** 3))  # skewed: low ids are popular
            base = 5.0 + (type_id % 997) * 3.7
            is_buy = rng.random() < 0.45
            price = round(base * (rng.uniform(0.80, 0.97) if is_buy else rng.uniform(1.0, 1.25)), 2)
            volume_total = rng.choice([1, 5, 10, 100, 1000, 25_000, 1_000_000])
            orders.append(
                {
                    "duration": rng.choice([7, 30, 90]),
                    "is_buy_order": is_buy,
                    "issued": (self._base_time - timedelta(minutes=rng.randint(0, 90_000))).strftime(
                        "%Y-%m-%dT%H:%M:%SZ"
                    ),
                    "location_id": 60_000_000 + rng.randint(0, 15_000),
                    "min_volume": 1,
                    "order_id": 6_000_000_000 + (region % 1000) * 10_000_000 + page * ORDERS_PER_PAGE + index,
                    "price": price,
                    "range": rng.choice(["region", "station", "solarsystem", "5"]),
                    "system_id": 30_000_000 + rng.randint(0, 5_000),
                    "type_id": type_id,
                    "volume_remain": rng.randint(1, volume_total),
                    "volume_total": volume_total,
                }
            )
        if order_type == "buy":
            return [o for o in orders if o["is_buy_order"]]
        if order_type == "sell":
            return [o for o in orders if not o["is_buy_order"]]
        return orders

    def _page_body(self, region: int, page: int, snapshot: int, order_type: str) -> bytes:
        """A page's JSON, generated once and then served from memory, as ESI serves its cache."""
        key = (region, page, snapshot, order_type)
        body = self._bodies.get(key)
        if body is None:
            body = json.dumps(self.orders(region, page, snapshot, order_type)).encode()
            self._bodies[key] = body
        return body

    # -- serving ------------------------------------------------------------------------

    def start(self) -> FakeEsi:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):  # noqa: N802
                fake.handle(self, head=True)

            def do_GET(self):  # noqa: N802
                fake.handle(self, head=False)

            def do_POST(self):  # noqa: N802
                fake.handle_names(self)

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeEsi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _send(
        self, handler, status: int, body: bytes, headers: dict[str, str], head: bool, truncate=False
    ) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", "application/json; charset=UTF-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if not head:
            handler.wfile.write(body[: len(body) // 2] if truncate else body)
            if truncate:
                handler.close_connection = True

    def _error(self, handler, status: int, message: str, head: bool) -> None:
        with self.lock:
            if status not in (404, 420):
                self.remain = max(0, self.remain - 1)
            headers = self._limit_headers()
        self._send(handler, status, json.dumps({"error": message}).encode(), headers, head)

    def _limit_headers(self) -> dict[str, str]:
        elapsed = time.monotonic() - self.window_started
        if elapsed >= self.error_window:
            self.window_started, self.remain, elapsed = time.monotonic(), self.error_budget, 0.0
        return {
            "X-ESI-Error-Limit-Remain": str(self.remain),
            "X-ESI-Error-Limit-Reset": str(max(1, int(self.error_window - elapsed))),
        }

    def handle(self, handler, head: bool) -> None:
        parsed = urlparse(handler.path)
        parts = [p for p in parsed.path.split("/") if p and p != "latest"]
        if self.latency:
            time.sleep(self.latency)
        if len(parts) != 3 or parts[0] != "markets" or parts[2] != "orders" or not parts[1].isdigit():
            return self._error(handler, 404, "Not found", head)
        region = int(parts[1])
        query = parse_qs(parsed.query)
        order_type = query.get("order_type", ["all"])[0]
        if order_type not in ("all", "buy", "sell"):
            return self._error(handler, 400, f"Invalid order_type: {order_type}", head)
        try:
            page = int(query.get("page", ["1"])[0])
        except ValueError:
            return self._error(handler, 400, "page must be an integer", head)
        with self.lock:
            headers = self._limit_headers()
            if self.remain <= 0:
                body = json.dumps({"error": "This software has exceeded the error limit for ESI."}).encode()
                self._send(handler, 420, body, headers, head)
                return
            self.requests += 1
            if self.rollover_after and self.requests == self.rollover_after + 1:
                self.snapshot += 1
            snapshot, expires_at = self.current_snapshot()
            fault = self._random.random() < self.fault_rate
            kind = self._random.choice(["500", "502", "503", "timeout", "truncated"]) if fault else None
            if fault:
                self.faults_served += 1
        if region not in KNOWN_REGIONS:
            return self._error(handler, 404, "Requested region not found!", head)
        if page < 1 or page > self.pages:
            return self._error(handler, 404, "Requested page does not exist!", head)
        if kind in ("500", "502", "503"):
            return self._error(handler, int(kind), "Internal error", head)
        if kind == "timeout":
            time.sleep(self.timeout_seconds)
            return self._error(handler, 504, "Timeout contacting tranquility", head)
        modified = self.last_modified(snapshot)
        headers = {
            **headers,
            "X-Pages": str(self.pages),
            "Last-Modified": format_datetime(modified, usegmt=True),
            "Expires": format_datetime(datetime.fromtimestamp(math.ceil(expires_at), UTC), usegmt=True),
            "ETag": f'"{region:x}{snapshot:x}{page:x}"',
            "Cache-Control": "public",
        }
        for name in self.omit_headers:
            headers.pop(name, None)
        if page in self.malformed_pages:
            body = self.malformed_pages[page].encode()
        else:
            body = self._page_body(region, page, snapshot, order_type)
        self._send(handler, 200, body, headers, head, truncate=kind == "truncated")

    def handle_names(self, handler) -> None:
        """``POST /universe/names/``: the names of the type ids in the JSON body."""
        parts = [p for p in urlparse(handler.path).path.split("/") if p and p != "latest"]
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        if self.latency:
            time.sleep(self.latency)
        if parts != ["universe", "names"]:
            return self._error(handler, 404, "Not found", False)
        try:
            ids = json.loads(body)
        except ValueError:
            return self._error(handler, 400, "body is not JSON", False)
        if not isinstance(ids, list) or not ids or len(ids) > NAMES_PER_REQUEST:
            return self._error(handler, 400, f"ids must be an array of 1 to {NAMES_PER_REQUEST} ids", False)
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            return self._error(handler, 400, "every id must be an integer", False)
        with self.lock:
            self.names_requests.append(list(ids))
            headers = self._limit_headers()
        if self.names_status:
            return self._error(handler, self.names_status, "names are unavailable", False)
        unknown = [i for i in ids if i not in self.type_names]
        if unknown and self.strict_names:
            return self._error(handler, 404, "Ensure all IDs are valid before resolving.", False)
        answer = [
            {"category": "inventory_type", "id": i, "name": self.type_names[i]}
            for i in dict.fromkeys(ids)
            if i in self.type_names
        ]
        self._send(handler, 200, json.dumps(answer).encode(), headers, head=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--rollover-after", type=int, default=None)
    parser.add_argument("--snapshot-seconds", type=float, default=None)
    args = parser.parse_args()
    esi = FakeEsi(port=args.port, host=args.host, seed=args.seed, pages=args.pages, latency=args.latency,
                  fault_rate=args.fault_rate, rollover_after=args.rollover_after,
                  snapshot_seconds=args.snapshot_seconds).start()  # fmt: skip
    print(f"fake ESI on {esi.url}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
