"""A collector request body as the JSON value it carries, however the SDK packed it.

SDKs send JSON plain, gzip- or deflate-compressed (`Content-Encoding`, or only the gzip magic
bytes, or PostHog's `compression=gzip-js` hint), base64-encoded (posthog-js `compression=base64`,
or simply base64 text), or as the `data=` field of a form (`navigator.sendBeacon`). Decompression
is incremental with a running cap, so a gzip bomb costs at most about `max_decoded_bytes` of memory.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import msgspec

from telemetry_mcp.service.collector.common import WireError

GZIP_MAGIC = b"\x1f\x8b"
EXPECTED = "a JSON object or array (plain, gzip, deflate or base64; or a form field data=)"
_DECODER = msgspec.json.Decoder()
_BOM = b"\xef\xbb\xbf"


def decode_body(
    raw: bytes,
    *,
    content_type: str | None,
    content_encoding: str | None,
    query: Mapping[str, str],
    max_decoded_bytes: int,
) -> Any:
    """The JSON value of a collector request body.

    Raises WireError(413) when the body decodes to more than `max_decoded_bytes`, and
    WireError(400) when it is empty or not JSON in any of the packings above.
    """
    data = raw
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "x-gzip") or data.startswith(GZIP_MAGIC):
        data = _inflate(data, max_decoded_bytes, gzip=True)
    elif encoding == "deflate":
        data = _inflate(data, max_decoded_bytes, gzip=False)
    elif encoding not in ("", "identity"):
        raise WireError(415, f"Content-Encoding {encoding!r} is not supported: send gzip, deflate or none")

    hint = (query.get("compression") or "").strip().lower()
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    # `curl -d '{...}'` labels a JSON body as a form: JSON text is read as JSON whatever the label.
    looks_json = data.lstrip()[:1] in (b"{", b"[")
    if (mime == "application/x-www-form-urlencoded" and not looks_json) or data.startswith(b"data="):
        data, form_hint = _form_data(data)
        hint = form_hint or hint

    if data.startswith(GZIP_MAGIC) or (hint in ("gzip-js", "gzip") and data.lstrip()[:1] not in (b"{", b"[")):
        data = _inflate(data, max_decoded_bytes, gzip=True)
    elif hint == "base64":
        data = _unbase64(data, max_decoded_bytes)

    data = data.strip()
    if data.startswith(_BOM):
        data = data[len(_BOM) :].strip()
    if not data:
        raise WireError(400, f"empty body: expected {EXPECTED}")
    if data[:1] not in (b"{", b"["):
        data = _unbase64(data, max_decoded_bytes)
    if len(data) > max_decoded_bytes:
        raise WireError(413, f"body is {len(data)} bytes decoded; at most {max_decoded_bytes} are accepted")
    return _parse_json(data)


def _inflate(data: bytes, limit: int, *, gzip: bool) -> bytes:
    """Decompress gzip (every member) or deflate (zlib-wrapped or raw), refusing more than `limit`."""
    out = bytearray()
    rest = data
    wbits = 16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS
    while rest:
        inflater = zlib.decompressobj(wbits)
        pending = rest
        try:
            while pending:
                # max_length bounds each step, so memory never runs ahead of the cap.
                out += inflater.decompress(pending, limit + 1 - len(out))
                if len(out) > limit:
                    raise WireError(
                        413, f"body decompresses to more than {limit} bytes; send smaller batches"
                    )
                if inflater.eof:
                    break
                pending = inflater.unconsumed_tail
        except zlib.error:
            if not gzip and wbits > 0 and not out:
                wbits = -zlib.MAX_WBITS  # some clients send raw deflate despite the HTTP spec
                continue
            kind = "gzip" if gzip else "deflate"
            raise WireError(400, f"body is not valid {kind} data: expected {EXPECTED}") from None
        if not inflater.eof:
            raise WireError(400, "compressed body is truncated: send the whole gzip/deflate stream")
        rest = inflater.unused_data if gzip and inflater.unused_data.startswith(GZIP_MAGIC) else b""
    return bytes(out)


def _form_data(data: bytes) -> tuple[bytes, str]:
    """The `data` field of a urlencoded form (bytes as sent) and its `compression` field, if any."""
    # latin-1 maps every byte to one character, so percent-decoded binary (gzip) survives intact.
    form = parse_qs(data.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    values = form.get("data")
    if not values:
        raise WireError(400, f"form body has no data= field: expected {EXPECTED}")
    hint = (form.get("compression") or [""])[0].strip().lower()
    return values[0].encode("latin-1"), hint


def _unbase64(data: bytes, limit: int) -> bytes:
    """Base64 text (standard or URL-safe, padding optional) decoded; gzip inside is inflated."""
    # A form decoder turns an unescaped "+" into a space; base64 never contains spaces.
    compacted = data.replace(b" ", b"+").replace(b"\n", b"").replace(b"\r", b"")
    compacted = compacted.replace(b"-", b"+").replace(b"_", b"/")
    compacted += b"=" * (-len(compacted) % 4)
    try:
        decoded = base64.b64decode(compacted, validate=True)
    except (binascii.Error, ValueError):
        raise WireError(400, f"body is not JSON (nor base64 of JSON): expected {EXPECTED}") from None
    if decoded.startswith(GZIP_MAGIC):
        return _inflate(decoded, limit, gzip=True)
    decoded = decoded.strip()
    if decoded[:1] not in (b"{", b"["):
        raise WireError(400, f"body is not JSON (nor base64 of JSON): expected {EXPECTED}")
    return decoded


def _parse_json(data: bytes) -> Any:
    """msgspec for speed; on any complaint the stdlib decides (it reads lone surrogates, say)."""
    try:
        return _DECODER.decode(data)
    except (msgspec.DecodeError, RecursionError):
        pass
    try:
        return json.loads(data)
    except RecursionError:
        raise WireError(400, "body is nested too deeply: events are flat records") from None
    except UnicodeDecodeError:
        raise WireError(400, f"body is not UTF-8 text: expected {EXPECTED}") from None
    except ValueError as exc:
        raise WireError(400, f"body is not valid JSON ({exc}): expected {EXPECTED}") from None
