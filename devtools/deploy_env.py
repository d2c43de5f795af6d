"""``make env BASE_URL=https://...``: the deployment's private ``.env`` for docker-compose.yaml.

Every secret compose refuses to start without, freshly generated, plus the address users
reach Airflow at (alert e-mails link under it). The file is created owner-only (0600) and
never overwritten: an existing ``.env`` holds the secrets the running deployment and its
database were set up with, so a second run refuses and changes nothing.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit


class EnvFileError(ValueError):
    pass


def check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise EnvFileError(
            f"BASE_URL must be the http(s) address users open, e.g. https://airflow.example.com; got {base_url!r}"
        )
    return base_url.rstrip("/")


def settings(base_url: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    token = secrets.token_urlsafe
    return {
        "AIRFLOW_BASE_URL": check_base_url(base_url),
        "AIRFLOW_JWT_SECRET": token(64),  # HS512 task tokens want >= 64 bytes
        "AIRFLOW_API_SECRET_KEY": token(32),
        "AIRFLOW_FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW_ADMIN_PASSWORD": token(24),
        "POSTGRES_PASSWORD": token(24),
        "REDIS_PASSWORD": token(24),
    }


def write_env(path: Path, base_url: str) -> dict[str, str]:
    """Create ``path`` (0600) with fresh settings; an existing file is refused, untouched."""
    values = settings(base_url)  # validated before anything is created
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise EnvFileError(
            f"{path} exists and is never overwritten (it holds the deployment's secrets); "
            "remove it yourself only if no deployment uses it"
        ) from None
    with os.fdopen(descriptor, "w") as env_file:
        env_file.write("".join(f"{name}={value}\n" for name, value in values.items()))
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--output", default=".env", type=Path)
    args = parser.parse_args(argv)
    try:
        write_env(args.output, args.base_url)
    except EnvFileError as error:
        print(f"make env: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} (mode 0600): AIRFLOW_BASE_URL={check_base_url(args.base_url)} and fresh secrets; "
          "add AIRFLOW_BASE_DIGEST (SECURITY.md, Supply chain)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
