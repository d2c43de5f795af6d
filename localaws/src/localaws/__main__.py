"""``python -m localaws``: the assembled stack on one port until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from localaws import LocalAWS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m localaws", description="The offline AWS stack.")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--enforce-iam", action="store_true", help="check every request against IAM policies")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stack = LocalAWS(port=args.port, host=args.host, enforce_iam=args.enforce_iam or None).start(log_requests=True)
    print(f"localaws ready on {stack.endpoint_url}", flush=True)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    stack.stop()
    print("localaws stopped", flush=True)


if __name__ == "__main__":
    main()
