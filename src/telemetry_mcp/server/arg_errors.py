"""Argument validation errors as one short line per problem (path, what was given, what is accepted).

pydantic's own text names generated classes ("analyze_user_behaviorArguments") and links to its
documentation; an agent needs the argument path, its value and the accepted values instead.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

_MAX_LINES = 10


def _path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(arguments)"


def _given(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def argument_problems(tool: str, exc: ValidationError, arguments: Any = None) -> str:
    """One line per problem: `tool: path: given X — what is accepted`."""
    lines: list[str] = []
    errors = exc.errors(include_url=False, include_context=False)
    for err in errors[:_MAX_LINES]:
        # Union arms repeat the path with the arm's type name in it: keep only the argument path.
        loc = tuple(
            p
            for p in err.get("loc", ())
            if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))
        )
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        given = "missing" if err.get("type") == "missing" else f"given {_given(err.get('input'))}"
        lines.append(f"{tool}: {_path(loc)}: {given} — {msg}")
    if len(errors) > _MAX_LINES:
        lines.append(f"{tool}: … and {len(errors) - _MAX_LINES} more problems")
    return "\n".join(dict.fromkeys(lines))
