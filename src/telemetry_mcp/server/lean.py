"""A lean `tools/list`: the same schemas with pydantic's repetition taken out (SPEC: ≤ 32,000 characters).

Kept: every property, type, enum, bound (minimum/maximum/lengths/pattern), default, `required`, and
the descriptions. Dropped or folded:
- `title` keywords (pydantic derives one per property and model from the name it already has);
- `anyOf: [X, {"type": "null"}]` folded into X with `"type": [T, "null"]` (enum gains null);
- output-schema descriptions that repeat what the tool description already says are kept short by
  the models themselves; here only the annotation `title` that repeats the tool's `title` goes.
"""

from __future__ import annotations

from typing import Any

from mcp.types import Tool

_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
OUTPUT_DROPPED = frozenset({"description", "required", "default"})


def slim_schema(schema: Any) -> Any:
    """A copy of a JSON schema without titles and with nullable unions folded."""
    if isinstance(schema, list):
        return [slim_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" or (key == "default" and value is None):
            continue  # a title repeats the name; a null default repeats "optional"
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: slim_schema(sub) for name, sub in value.items()}
        elif key in ("default", "enum", "const", "examples", "required"):
            out[key] = value
        else:
            out[key] = slim_schema(value)
    return _fold_nullable(out)


def _drop_def_descriptions(schema: dict[str, Any]) -> dict[str, Any]:
    """A definition's own description repeats the description of the argument that uses it."""
    defs = schema.get("$defs")
    if not isinstance(defs, dict):
        return schema
    return {
        **schema,
        "$defs": {n: {k: v for k, v in d.items() if k != "description"} for n, d in defs.items()},
    }


def _fold_nullable(schema: dict[str, Any]) -> dict[str, Any]:
    arms = schema.get("anyOf")
    if not isinstance(arms, list) or len(arms) != 2 or {"type": "null"} not in arms:
        return schema
    other = next(a for a in arms if a != {"type": "null"})
    kind = other.get("type") if isinstance(other, dict) else None
    if not isinstance(kind, str) or "$ref" in other:
        return schema
    folded = {k: v for k, v in schema.items() if k != "anyOf"}
    merged = {**other, **folded, "type": [kind, "null"]}
    if "enum" in other and None not in other["enum"]:
        merged["enum"] = [*other["enum"], None]
    return merged


def _inline_single_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline every `$defs` entry referenced once (its name and the reference cost more than it)."""
    defs = schema.get("$defs")
    if not isinstance(defs, dict):
        return schema
    counts: dict[str, int] = {}

    def count(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                counts[ref[8:]] = counts.get(ref[8:], 0) + 1
            for v in node.values():
                count(v)
        elif isinstance(node, list):
            for v in node:
                count(v)

    count(schema)
    single = {name for name, n in counts.items() if n == 1}

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref[8:] in single and ref.startswith("#/$defs/"):
                rest = {k: inline(v) for k, v in node.items() if k != "$ref"}
                return {**inline(defs[ref[8:]]), **rest}
            return {k: inline(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    out: dict[str, Any] = inline(schema)
    kept = {name: inline(d) for name, d in defs.items() if name not in single and name in counts}
    if kept:
        out["$defs"] = kept
    return out


def _drop(schema: Any, keys: frozenset[str]) -> Any:
    """Remove annotation keywords (never property names) from a schema."""
    if isinstance(schema, list):
        return [_drop(s, keys) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in keys:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _drop(sub, keys) for name, sub in value.items()}
        elif key in ("default", "enum", "const", "examples"):
            out[key] = value
        else:
            out[key] = _drop(value, keys)
    return out


def slim_output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The output schema as listed: structure and types only (what each field means is in the tool
    description and the answer's own summary), single-use definitions inlined."""
    slim: dict[str, Any] = _bare_leaves(
        _untyped_objects(_inline_single_defs(_drop(slim_schema(schema), OUTPUT_DROPPED)), root=True)
    )
    return slim


_STRUCTURAL = ("properties", "items", "$ref", "anyOf", "oneOf", "allOf", "$defs")


def _bare_leaves(schema: Any) -> Any:
    """Scalar output fields listed by name only (`{}`): their types repeat what each answer shows, and
    a bare schema still validates every value. Objects and arrays keep their structure."""
    if isinstance(schema, list):
        return [_bare_leaves(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if not any(k in schema for k in _STRUCTURAL):
        return {}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _bare_leaves(sub) for name, sub in value.items()}
        else:
            out[key] = _bare_leaves(value)
    return out


def _untyped_objects(schema: Any, *, root: bool = False) -> Any:
    """Below the root, `properties` already says "object": drop the repeated `"type": "object"`."""
    if isinstance(schema, list):
        return [_untyped_objects(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "type" and value == "object" and "properties" in schema and not root:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _untyped_objects(sub) for name, sub in value.items()}
        else:
            out[key] = _untyped_objects(value)
    return out


def slim_tool(tool: Tool) -> Tool:
    """The tool as listed: schemas slimmed, the annotations' copy of the title dropped."""
    annotations = tool.annotations
    if annotations is not None:
        drop: dict[str, Any] = {"title": None} if annotations.title == tool.title else {}
        if annotations.read_only_hint:
            # Meaningful only for tools that write (MCP spec): a read-only tool destroys nothing.
            drop |= {"destructive_hint": None, "idempotent_hint": None}
        annotations = annotations.model_copy(update=drop)
    return tool.model_copy(
        update={
            "input_schema": _drop_def_descriptions(slim_schema(tool.input_schema)),
            "output_schema": slim_output_schema(tool.output_schema) if tool.output_schema else None,
            "annotations": annotations,
        }
    )
