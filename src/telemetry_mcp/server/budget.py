"""The answer budget: every tool answer fits `answer_max_chars` (default 25,000), text and structured
content each (SPEC section 4).

How a tool gets it: register the function with `telemetry_mcp.server.app.tool` and return a pydantic
model with a `summary: str` field (and, by convention, `truncated: bool`). That is all — the decorator
hands the model to `answer()`, which

- dumps it once (JSON mode) as the structured content, and renders the text block as the summary
  line followed by the same data as compact JSON (never an indented copy);
- while either is over the budget, cuts the list that weighs most (at any depth) from its end,
  keeping its order (most important / oldest first, as every analysis sorts), and repeats;
- marks the answer `truncated: true` (and `<list>_truncated: true` when the model has that field)
  and appends to the summary which lists were cut, where the rest starts, and how to get it
  (`rest_hint` of the `tool()` call, e.g. "a coarser interval or a narrower since/until").

The tool's output schema stays the model's own (`Annotated[CallToolResult, Model]`), and the SDK
still validates the cut structured content against it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel

DEFAULT_MAX_CHARS = 25_000
DEFAULT_REST_HINT = "narrow since/until, filter more, or pass a smaller limit"
SUMMARY_CHARS = 600
_NOTE_CHARS = 330  # the cut note's share of the 600-character summary
Path = tuple[str | int, ...]


def structured_size(data: Any) -> int:
    """Characters of the structured content as a client may print it (json.dumps defaults: the longest)."""
    return len(json.dumps(data))


def compact(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def render_text(data: dict[str, Any]) -> str:
    """The text block: the summary, then every other field as compact JSON."""
    rest = {k: v for k, v in data.items() if k != "summary"}
    summary = data.get("summary")
    head = f"{summary}\n" if isinstance(summary, str) and summary else ""
    return head + compact(rest)


@dataclass
class Cut:
    """One list cut to fit: where it sits, how many items were kept, how many there were."""

    path: Path
    kept: int
    total: int
    next_item: Any
    unit: str = ""

    def label(self) -> str:
        return ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in self.path).replace(".[", "[")


def _lists(node: Any, path: Path = ()) -> list[tuple[Path, list[Any]]]:
    out: list[tuple[Path, list[Any]]] = []
    stack: list[tuple[Path, Any]] = [(path, node)]
    while stack:
        here, cur = stack.pop()
        if isinstance(cur, dict):
            stack.extend(((*here, k), v) for k, v in cur.items())
        elif isinstance(cur, list):
            if cur:
                out.append((here, cur))
            stack.extend(((*here, i), v) for i, v in enumerate(cur))
    return out


def _longest_string(node: Any, path: Path = ()) -> tuple[Path, str] | None:
    best: tuple[Path, str] | None = None
    stack: list[tuple[Path, Any]] = [(path, node)]
    while stack:
        here, cur = stack.pop()
        if isinstance(cur, dict):
            stack.extend(((*here, k), v) for k, v in cur.items() if here or k != "summary")
        elif isinstance(cur, list):
            stack.extend(((*here, i), v) for i, v in enumerate(cur))
        elif isinstance(cur, str) and (best is None or len(cur) > len(best[1])):
            best = (here, cur)
    return best


def _set(node: Any, path: Path, value: Any) -> None:
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


def _where(item: Any) -> str:
    """Where the rest starts, when the first cut item has a recognisable key (a bucket, a rank)."""
    if not isinstance(item, dict):
        return ""
    for key, value in item.items():
        if key.endswith("_start") and isinstance(value, str):
            return f" (the rest from {key} {value})"
    return ""


def fit(data: dict[str, Any], max_chars: int) -> list[Cut]:
    """Cut `data` in place until its text and structured forms each fit `max_chars`; the cuts made."""
    cuts: dict[Path, Cut] = {}
    reserve = _NOTE_CHARS + 16  # the note that the summary gains once something is cut
    while True:
        size = max(len(render_text(data)), structured_size(data))
        if size + (reserve if cuts else 0) <= max_chars:
            break
        candidates = _lists(data)
        if not candidates:
            longest = _longest_string(data)
            if longest is None or not longest[1]:
                break  # nothing left to cut (cannot happen with max_chars >= the settings' minimum)
            spath, text = longest
            short = text[: len(text) // 2] + "…"
            _set(data, spath, short)
            first = cuts.get(spath)
            cuts[spath] = Cut(spath, len(short), first.total if first else len(text), None, " characters")
            continue
        sized = [(structured_size(lst), path, lst) for path, lst in candidates]
        _, path, lst = max(sized, key=lambda t: (t[0], -len(t[1])))
        excess = size + reserve - max_chars
        dropped, keep = 0, len(lst)
        while keep > 0 and dropped < excess:
            keep -= 1
            dropped += structured_size(lst[keep]) + 2
        cut = cuts.get(path)
        total = cut.total if cut else len(lst)
        cuts[path] = Cut(path, keep, total, lst[keep])
        del lst[keep:]
    return list(cuts.values())


def note(cuts: list[Cut], max_chars: int, hint: str) -> str:
    """The summary line saying what was cut and how to get the rest."""
    parts = []
    for cut in sorted(cuts, key=lambda c: c.path)[:3]:
        parts.append(f"{cut.label()} {cut.kept:,} of {cut.total:,}{cut.unit}{_where(cut.next_item)}")
    more = f"; {len(cuts) - 3} more lists" if len(cuts) > 3 else ""
    text = f"truncated: cut to fit the {max_chars:,}-character answer budget: {'; '.join(parts)}{more}."
    return f"{text} For the rest: {hint}."[:_NOTE_CHARS]


def _with_note(summary: str, extra: str) -> str:
    room = SUMMARY_CHARS - len(extra) - 1
    head = summary if len(summary) <= room else summary[: max(room - 1, 0)].rstrip() + "…"
    return f"{head} {extra}".strip()


def answer(
    result: BaseModel, *, max_chars: int = DEFAULT_MAX_CHARS, rest_hint: str = DEFAULT_REST_HINT
) -> CallToolResult:
    """The CallToolResult of a tool's result model: compact text and structured content within budget."""
    data: dict[str, Any] = result.model_dump(mode="json")
    cuts = fit(data, max_chars)
    if cuts:
        data["truncated"] = True
        for cut in cuts:
            flag = f"{cut.path[0]}_truncated"
            if isinstance(data.get(flag), bool):
                data[flag] = True
        data["summary"] = _with_note(str(data.get("summary", "")), note(cuts, max_chars, rest_hint))
    return CallToolResult(content=[TextContent(type="text", text=render_text(data))], structured_content=data)
