"""docker-compose.yaml as `docker compose` reads it: variables interpolated from an environment.

No Docker engine here, so the tests interpolate every string value of the parsed file (keys
and comments are not interpolated) as the Compose specification says
(https://compose-spec.io, "Interpolation"): ``$$`` is a literal ``$``; ``${VAR}`` and
``$VAR`` are the value (empty when unset); ``${VAR:-default}`` / ``${VAR-default}`` fall
back when unset-or-empty / unset; ``${VAR:?message}`` / ``${VAR?message}`` refuse to start
when unset-or-empty / unset; ``${VAR:+other}`` / ``${VAR+other}`` replace when set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yaml"

# one expression: $$, ${NAME<op><word>} or $NAME
EXPRESSION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<word>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class Reference:
    name: str
    op: str | None  # None, ":-", "-", ":?", "?", ":+", "+"
    word: str | None


class MissingRequiredVariable(Exception):
    """What `docker compose` reports (and exits on) for an unset ``${VAR:?message}``."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"required variable {name} is missing a value: {message}")
        self.name = name


def references(text: str) -> list[Reference]:
    """Every variable the text refers to, in order (``$$`` escapes are not references)."""
    found = []
    for match in EXPRESSION.finditer(text):
        if match["escaped"]:
            continue
        found.append(Reference(match["braced"] or match["bare"], match["op"], match["word"]))
    return found


def interpolate(text: str, env: dict[str, str]) -> str:
    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, word = match["op"], match["word"] or ""
        is_set = name in env
        value = env.get(name, "")
        usable = bool(value) if op and op.startswith(":") else is_set
        if op in (":-", "-"):
            return value if usable else word
        if op in (":?", "?"):
            if not usable:
                raise MissingRequiredVariable(name, word)
            return value
        if op in (":+", "+"):
            return word if usable else ""
        return value

    return EXPRESSION.sub(substitute, text)


def raw_compose() -> dict:
    """The parsed file, variables not interpolated."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def string_values(node: object) -> list[str]:
    """Every string value in the model (what compose interpolates)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [text for value in node.values() for text in string_values(value)]
    if isinstance(node, list):
        return [text for value in node for text in string_values(value)]
    return []


def _interpolated(node: object, env: dict[str, str]) -> object:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: _interpolated(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolated(value, env) for value in node]
    return node


def load_compose(env: dict[str, str]) -> dict:
    """The compose model after interpolation (raises MissingRequiredVariable like compose)."""
    return _interpolated(raw_compose(), env)
