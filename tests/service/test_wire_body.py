"""decode_body: every packing an SDK uses comes back as the JSON value it carries."""

import base64
import gzip
import json
import tracemalloc
import zlib
from typing import Any
from urllib.parse import quote_from_bytes, urlencode

import pytest

from telemetry_mcp.service.collector.body import decode_body
from telemetry_mcp.service.collector.common import WireError

BATCH = {
    "api_key": "phc_test",
    "batch": [{"event": "$pageview", "distinct_id": "u1", "properties": {"n": "é"}}],
}
TEXT = json.dumps(BATCH).encode()
LIMIT = 64 * 1024


def decode(
    raw: bytes,
    content_type: str | None = "application/json",
    encoding: str | None = None,
    query: dict[str, str] | None = None,
    limit: int = LIMIT,
) -> Any:
    return decode_body(
        raw, content_type=content_type, content_encoding=encoding, query=query or {}, max_decoded_bytes=limit
    )


def test_plain_json_is_parsed() -> None:
    assert decode(TEXT) == BATCH


def test_a_bare_array_is_parsed() -> None:
    assert decode(b' [{"event": "a"}] ') == [{"event": "a"}]


def test_gzip_announced_by_content_encoding_is_inflated() -> None:
    assert decode(gzip.compress(TEXT), encoding="gzip") == BATCH


def test_gzip_is_recognised_by_its_magic_bytes_alone() -> None:
    assert decode(gzip.compress(TEXT), content_type="text/plain") == BATCH


def test_the_gzip_js_query_hint_inflates_the_body() -> None:
    assert decode(gzip.compress(TEXT), content_type="text/plain", query={"compression": "gzip-js"}) == BATCH


def test_deflate_zlib_wrapped_or_raw_is_inflated() -> None:
    raw_deflate = zlib.compressobj(wbits=-15)
    raw = raw_deflate.compress(TEXT) + raw_deflate.flush()
    assert decode(zlib.compress(TEXT), encoding="deflate") == BATCH
    assert decode(raw, encoding="deflate") == BATCH


def test_several_gzip_members_are_all_inflated() -> None:
    half = len(TEXT) // 2
    assert decode(gzip.compress(TEXT[:half]) + gzip.compress(TEXT[half:])) == BATCH


def test_the_base64_hint_decodes_the_body() -> None:
    assert decode(base64.b64encode(TEXT), query={"compression": "base64"}) == BATCH


def test_base64_text_of_json_is_recognised_without_a_hint() -> None:
    assert decode(base64.b64encode(TEXT), content_type="text/plain") == BATCH
    assert decode(base64.urlsafe_b64encode(TEXT).rstrip(b"=")) == BATCH


def test_base64_of_gzip_is_inflated() -> None:
    assert decode(base64.b64encode(gzip.compress(TEXT))) == BATCH


def test_text_plain_json_as_send_beacon_sends_it_is_json() -> None:
    assert decode(TEXT, content_type="text/plain;charset=UTF-8") == BATCH


def test_form_data_field_with_json() -> None:
    form = urlencode({"data": TEXT.decode()}).encode()
    assert decode(form, content_type="application/x-www-form-urlencoded") == BATCH


def test_form_data_field_with_base64_json() -> None:
    form = urlencode({"data": base64.b64encode(TEXT).decode(), "compression": "base64"}).encode()
    assert decode(form, content_type="application/x-www-form-urlencoded") == BATCH


def test_form_data_field_with_unescaped_base64_plus_signs() -> None:
    encoded = base64.b64encode(b'{"k": ">>>???"}')
    assert b"+" in encoded or b"/" in encoded
    assert decode(b"data=" + encoded, content_type="application/x-www-form-urlencoded") == {"k": ">>>???"}


def test_form_data_field_with_gzip_and_the_hint_in_the_form() -> None:
    form = b"data=" + quote_from_bytes(gzip.compress(TEXT)).encode() + b"&compression=gzip-js"
    assert decode(form, content_type="application/x-www-form-urlencoded") == BATCH


def test_form_data_field_with_gzip_and_the_hint_in_the_query() -> None:
    form = b"data=" + quote_from_bytes(gzip.compress(TEXT)).encode()
    assert (
        decode(form, content_type="application/x-www-form-urlencoded", query={"compression": "gzip-js"})
        == BATCH
    )


def test_a_gzip_bomb_gets_413_without_inflating_it_in_memory() -> None:
    bomb = gzip.compress(b"0" * (1024 * 1024), compresslevel=9)
    assert len(bomb) < 2 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(WireError) as caught:
            decode(bomb, encoding="gzip", limit=LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.status == 413
    assert "65536" in caught.value.message
    assert peak < 4 * LIMIT  # the whole megabyte was never held


def test_a_gzip_bomb_inside_base64_inside_a_form_gets_413() -> None:
    bomb = base64.b64encode(gzip.compress(b"0" * (1024 * 1024)))
    with pytest.raises(WireError) as caught:
        decode(b"data=" + quote_from_bytes(bomb).encode(), content_type="application/x-www-form-urlencoded")
    assert caught.value.status == 413


def test_a_plain_body_over_the_limit_gets_413() -> None:
    with pytest.raises(WireError) as caught:
        decode(b"[" + b" " * LIMIT + b"]")
    assert caught.value.status == 413


@pytest.mark.parametrize(
    ("raw", "encoding", "says"),
    [
        (b"", None, "empty body: expected a JSON object or array"),
        (b"   \n", None, "empty body"),
        (b'{"event": ', None, "body is not valid JSON"),
        (b"hello world", None, "body is not JSON (nor base64 of JSON)"),
        (b"\x1f\x8bnot really gzip", None, "body is not valid gzip data"),
        (gzip.compress(TEXT)[:-12], "gzip", "compressed body is truncated"),
        (b"\xff\xfe\x00garbage", None, "body is not JSON"),
        (base64.b64encode(b"plain words"), None, "body is not JSON (nor base64 of JSON)"),
        (b"data=", None, "empty body"),
        (b"x=1", None, "body is not JSON"),
    ],
)
def test_unreadable_bodies_get_400_with_what_was_expected(
    raw: bytes, encoding: str | None, says: str
) -> None:
    with pytest.raises(WireError) as caught:
        decode(raw, encoding=encoding)
    assert caught.value.status == 400
    assert says in caught.value.message
    assert "\n" not in caught.value.message


def test_a_form_without_data_field_gets_400() -> None:
    with pytest.raises(WireError) as caught:
        decode(b"x=1", content_type="application/x-www-form-urlencoded")
    assert (caught.value.status, caught.value.message) == (
        400,
        "form body has no data= field: expected a JSON object or array (plain, gzip, deflate or base64; or a form field data=)",
    )


def test_a_json_nesting_bomb_gets_400_not_recursion_error() -> None:
    with pytest.raises(WireError) as caught:
        decode(b"[" * 200_000 + b"]" * 200_000, limit=1024 * 1024)
    assert (caught.value.status, caught.value.message) == (
        400,
        "body is nested too deeply: events are flat records",
    )


def test_an_unknown_content_encoding_gets_415() -> None:
    with pytest.raises(WireError) as caught:
        decode(TEXT, encoding="br")
    assert caught.value.status == 415


def test_a_lone_surrogate_escape_is_left_to_per_event_validation() -> None:
    assert decode(b'[{"event": "a", "properties": {"s": "\\ud800"}}]') == [
        {"event": "a", "properties": {"s": "\ud800"}}
    ]


def test_a_json_body_labelled_as_a_form_as_curl_sends_it_is_read_as_json() -> None:
    payload = decode_body(
        b'{"api_key": "k", "batch": []}',
        content_type="application/x-www-form-urlencoded",
        content_encoding=None,
        query={},
        max_decoded_bytes=1024,
    )
    assert payload == {"api_key": "k", "batch": []}
