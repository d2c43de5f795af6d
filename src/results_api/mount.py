"""What the results plugin mounts on the api-server: the results app, built on its first request.

Airflow's plugin manager imports every plugin in every component (scheduler, triggerer,
dag-processor, Celery workers, each task process), but only the api-server serves HTTP.
Building the FastAPI app when the plugin is imported cost every one of those processes
about 0.45 s and fastapi + boto3 in memory (benchmarks/bench_components.py). So the plugin
mounts this small ASGI app instead; it imports ``results_api.app`` and builds the real app
once, on the first request, off the event loop. Nothing here imports more than the stdlib.
"""

from __future__ import annotations

import threading
from typing import Any

URL_PREFIX = "/results"


class ResultsApp:
    """An ASGI app that builds ``results_api.app.create_app()`` when first needed and then is it."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        """The FastAPI app (built now if no request has built it yet)."""
        if self._app is None:
            with self._lock:  # two first requests at once build it once
                if self._app is None:
                    from results_api.app import create_app

                    self._app = create_app()
        return self._app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self._app is None:
            from starlette.concurrency import run_in_threadpool  # the api-server has it loaded

            await run_in_threadpool(lambda: self.app)
        await self._app(scope, receive, send)
