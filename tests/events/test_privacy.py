"""The privacy pipeline (SPEC section 3): what is stored after hostile input, switch by switch."""

from __future__ import annotations

import copy
import hashlib
import hmac
import re
import string
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry_mcp.events.privacy import (
    PrivacyPipeline,
    PrivacySettings,
    anonymize_url,
    hash_user_id,
    is_sampled_in,
    sampling_key,
    scrub_text,
)

SALT = bytes.fromhex("00112233445566778899aabbccddeeff")
ALL_OFF = PrivacySettings(
    exclude_fields=False, scrub_values=False, anonymize_urls=False, hash_user_ids=False, excluded_paths=()
)


def apply(row: dict[str, Any], settings: PrivacySettings | None = None) -> list[str]:
    return PrivacyPipeline(settings or PrivacySettings(), SALT).apply(row)


# --- field exclusion ---------------------------------------------------------------------------


def test_default_excluded_paths_and_secret_named_keys_are_removed() -> None:
    row: dict[str, Any] = {"properties": {"password": "hunter2", "token": "t", "plan": "pro"}}

    paths = apply(row)

    assert row["properties"] == {"plan": "pro"}
    assert paths == ["properties.password", "properties.token"]


def test_a_configured_nested_path_removes_only_that_leaf() -> None:
    row: dict[str, Any] = {"properties": {"a": {"b": "x", "c": "y"}, "b": "kept"}}

    paths = apply(row, PrivacySettings(excluded_paths=("properties.a.b", "properties.missing.deep")))

    assert row["properties"] == {"a": {"c": "y"}, "b": "kept"}
    assert paths == ["properties.a.b"]


def test_secret_keys_are_removed_at_any_depth_inside_dicts_and_lists() -> None:
    row: dict[str, Any] = {
        "properties": {
            "order": {
                "items": [
                    {"sku": "A-1", "X-Api-Key": "k1"},
                    {"sku": "B-2", "meta": {"sessionCookie": "c", "color": "red"}},
                    [{"userEmail": "e"}, {"size": 3}],
                ]
            },
            "headers": {"Authorization": "Basic xyz", "Accept": "text/html"},
        }
    }

    paths = apply(row)

    assert row["properties"] == {
        "order": {
            "items": [
                {"sku": "A-1"},
                {"sku": "B-2", "meta": {"color": "red"}},
                [{}, {"size": 3}],
            ]
        },
        "headers": {"Accept": "text/html"},
    }
    assert paths == [
        "properties.order.items[0].X-Api-Key",
        "properties.order.items[1].meta.sessionCookie",
        "properties.order.items[2][0].userEmail",
        "properties.headers.Authorization",
    ]


@pytest.mark.parametrize(
    "key",
    ["password", "userPassword", "db_passwd", "clientSecret", "refresh_token", "api_key", "apiKey",
     "X-API-KEY", "authorization", "Cookie", "contact_email", "EMAIL", "ssn", "user_ssn", "customerSSN",
     "credit_card", "creditCard", "credit-card-number"],
)  # fmt: skip
def test_every_secret_spelling_is_removed(key: str) -> None:
    row: dict[str, Any] = {"properties": {key: "v", "keep": 1}}

    assert apply(row) == [f"properties.{key}"]
    assert row["properties"] == {"keep": 1}


@pytest.mark.parametrize("key", ["className", "classname", "session_id", "lesson", "component", "plan"])
def test_innocent_keys_that_merely_contain_ssn_letters_are_kept(key: str) -> None:
    row: dict[str, Any] = {"properties": {key: "v"}}

    assert apply(row) == []
    assert row["properties"] == {key: "v"}


# --- value scrubbing ---------------------------------------------------------------------------

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


@pytest.mark.parametrize(
    ("text", "expected", "kinds"),
    [
        ("mail john.doe+tag@example.co.uk now", "mail [redacted:email] now", ["email"]),
        ("<JOSÉ@exämple.com>", "<[redacted:email]>", ["email"]),
        (f"token={JWT}", "token=[redacted:jwt]", ["jwt"]),
        ("Authorization: Bearer abc.DEF-123_~+/=", "Authorization: [redacted:bearer]", ["bearer"]),
        ("authorization: BEARER xyz", "authorization: [redacted:bearer]", ["bearer"]),
        (f"Bearer {JWT}", "[redacted:bearer]", ["bearer"]),
        ("from 10.0.0.1, to 192.168.1.255.", "from [redacted:ipv4], to [redacted:ipv4].", ["ipv4"]),
        ("v1.2.3.4.5 and 256.1.1.1 and 01.2.3.4", "v1.2.3.4.5 and 256.1.1.1 and 01.2.3.4", []),
        ("host 2001:db8::8a2e:370:7334 up", "host [redacted:ipv6] up", ["ipv6"]),
        ("http://[::1]:8080/ and fe80::1", "http://[[redacted:ipv6]]:8080/ and [redacted:ipv6]", ["ipv6"]),
        ("mapped ::ffff:10.0.0.1", "mapped [redacted:ipv6]", ["ipv6"]),
        (
            "at 12:30:45, std::string, mac 00:1a:2b:3c:4d:5e",
            "at 12:30:45, std::string, mac 00:1a:2b:3c:4d:5e",
            [],
        ),
        ("card 4111 1111 1111 1111 ok", "card [redacted:card] ok", ["card"]),
        ("card 4111-1111-1111-1111", "card [redacted:card]", ["card"]),
        ("amex 378282246310005", "amex [redacted:card]", ["card"]),
        ("card 4111 1111 1111 1112", "card 4111 1111 1111 1112", []),
        ("qty 2, order 1234 4111 1111 1111 1111", "qty 2, order 1234 [redacted:card]", ["card"]),
        ("4111 1111 1111 1111 exp 12 28", "[redacted:card] exp 12 28", ["card"]),
        ("order 12345678901234567890123", "order 12345678901234567890123", []),
        ("ts 1700000000000", "ts 1700000000000", []),
        (
            "me@x.io from 10.0.0.1 paid 4111111111111111",
            "[redacted:email] from [redacted:ipv4] paid [redacted:card]",
            ["email", "ipv4", "card"],
        ),
        ("a@b.co+c@d.com", "[redacted:email][redacted:email]", ["email"]),
        ("nothing to see here", "nothing to see here", []),
    ],
)
def test_scrub_text_redacts_each_kind_exactly(text: str, expected: str, kinds: list[str]) -> None:
    assert scrub_text(text) == (expected, kinds)


def test_values_are_scrubbed_in_name_and_at_any_depth_of_properties() -> None:
    row: dict[str, Any] = {
        "name": "signup john@example.com",
        "component": "Form",
        "properties": {
            "user": {"contact": "write to a@b.io"},
            "items": ["ok", "ok", {"note": "card 4111 1111 1111 1111"}, ["from 10.0.0.1"]],
            "header": f"Bearer {JWT}",
            "count": 4111111111111111,
            "clean": "all good",
        },
    }

    paths = apply(row)

    assert row == {
        "name": "signup [redacted:email]",
        "component": "Form",
        "properties": {
            "user": {"contact": "write to [redacted:email]"},
            "items": ["ok", "ok", {"note": "card [redacted:card]"}, ["from [redacted:ipv4]"]],
            "header": "[redacted:bearer]",
            "count": 4111111111111111,
            "clean": "all good",
        },
    }
    assert paths == [
        "properties.user.contact",
        "properties.items[2].note",
        "properties.items[3][0]",
        "properties.header",
        "name",
    ]


def test_a_100_kb_adversarial_string_is_scrubbed_in_one_go() -> None:
    hostile = [
        "a" * 100_000,
        "a." * 50_000 + "@",
        "eyJ" * 33_000 + ".",
        "bearer " * 14_000,
        ":" * 100_000,
        "1:" * 50_000,
        "1." * 50_000,
        "4111 " * 20_000,
        "x@" * 50_000,
        ("4111111111111111 1.2.3.4 " * 4_000),
    ]
    for text in hostile:
        out, _ = scrub_text(text)
        assert "4111111111111111" not in out


# --- URL anonymization -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/profile/abc-123-def-456?tab=settings&userId=789", "/profile/[id]"),
        ("https://app.example.com/orders/12345/items#x", "https://app.example.com/orders/[id]/items"),
        ("/docs/getting-started", "/docs/getting-started"),
        ("/v2/users", "/v2/users"),
        ("/u/550e8400-e29b-41d4-a716-446655440000/edit", "/u/[id]/edit"),
        ("/blob/deadbeef", "/blob/[id]"),
        ("/s/a1b2c3d4", "/s/[id]"),
        ("/s/a1b2c3", "/s/a1b2c3"),
        ("https://user:pw@host.example:8443/a?b#c", "https://host.example:8443/a"),
        ("http://10.1.2.3/x", "http://10.1.2.3/x"),
        ("/search?q=john@example.com", "/search"),
        ("", ""),
    ],
)
def test_anonymize_url(url: str, expected: str) -> None:
    assert anonymize_url(url) == expected


def test_page_and_url_valued_properties_are_anonymized_and_listed_only_when_changed() -> None:
    row: dict[str, Any] = {
        "page": "/profile/abc-123-def-456?tab=settings&userId=789",
        "properties": {
            "referrer": "https://news.example.com/item/12345",
            "pageUrl": "/orders/98765",
            "next_url": "/checkout",
            "href": "/docs/intro",
            "links": ["/a/123", "ftp://files.example.com/42"],
            "note": "/tmp/12345",
        },
    }

    paths = apply(row)

    assert row == {
        "page": "/profile/[id]",
        "properties": {
            "referrer": "https://news.example.com/item/[id]",
            "pageUrl": "/orders/[id]",
            "next_url": "/checkout",
            "href": "/docs/intro",
            "links": ["/a/123", "ftp://files.example.com/[id]"],
            "note": "/tmp/12345",
        },
    }
    assert paths == ["properties.referrer", "properties.pageUrl", "properties.links[1]", "page"]


def test_posthog_dollar_keys_and_path_suffixes_are_url_valued() -> None:
    row: dict[str, Any] = {
        "properties": {
            "$pathname": "/app/settings/abc-123-def-456",
            "$session_entry_pathname": "/app/settings/abc-123-def-456",
            "$set_once": {"$initial_pathname": "/orders/98765"},
            "entry_path": "/u/123456",
            "$os_version": "/10.0.19045",
        },
    }

    apply(row)

    assert row["properties"] == {
        "$pathname": "/app/settings/[id]",
        "$session_entry_pathname": "/app/settings/[id]",
        "$set_once": {"$initial_pathname": "/orders/[id]"},
        "entry_path": "/u/[id]",
        "$os_version": "/10.0.19045",
    }


def test_a_browser_version_in_a_user_agent_is_not_taken_for_an_ip_address() -> None:
    agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0.0.0 Safari/537.36"

    assert scrub_text(agent) == (agent, [])
    assert scrub_text("from 10.1.2.3 via http://192.168.0.1/x") == (
        "from [redacted:ipv4] via http://[redacted:ipv4]/x",
        ["ipv4"],
    )


def test_a_url_that_was_scrubbed_and_anonymized_is_listed_once() -> None:
    row: dict[str, Any] = {"properties": {"url": "https://x.example/u/42?email=a@b.io"}}

    assert apply(row) == ["properties.url"]
    assert row["properties"] == {"url": "https://x.example/u/[id]"}


# --- user ids and ip ---------------------------------------------------------------------------


def test_hash_user_id_is_hmac_sha256_of_the_id_keyed_by_the_salt_cut_to_16_hex() -> None:
    expected = hmac.new(SALT, b"user-42", hashlib.sha256).hexdigest()[:16]

    assert hash_user_id("user-42", SALT) == expected
    assert hash_user_id("user-42", b"another salt") != expected


def test_user_id_is_stored_hashed_and_not_listed_as_a_redaction() -> None:
    row: dict[str, Any] = {"user_id": "user-42", "session_id": "s1"}

    assert apply(row) == []
    assert row == {"user_id": hash_user_id("user-42", SALT), "session_id": "s1"}


def test_a_missing_user_id_stays_missing() -> None:
    row: dict[str, Any] = {"user_id": None}

    apply(row)

    assert row == {"user_id": None}


def test_ip_is_never_stored_even_with_every_step_off() -> None:
    row: dict[str, Any] = {"event_type": "page_view", "ip": "203.0.113.9"}

    assert apply(row, ALL_OFF) == ["ip"]
    assert row == {"event_type": "page_view"}


# --- every switch ------------------------------------------------------------------------------


def hostile_row() -> dict[str, Any]:
    return {
        "event_type": "page_view",
        "name": "hello a@b.io",
        "user_id": "u1",
        "page": "/orders/12345?x=1",
        "properties": {"password": "p", "apiKey": "k", "note": "from 10.0.0.1", "url": "/p/987654"},
    }


def test_with_every_step_off_the_row_is_stored_as_sent() -> None:
    row = hostile_row()

    assert apply(row, ALL_OFF) == []
    assert row == hostile_row()


@pytest.mark.parametrize(
    ("switch", "untouched"),
    [
        ("exclude_fields", {"properties": {"password": "p", "apiKey": "k"}}),
        ("scrub_values", {"name": "hello a@b.io", "properties": {"note": "from 10.0.0.1"}}),
        ("anonymize_urls", {"page": "/orders/12345?x=1", "properties": {"url": "/p/987654"}}),
        ("hash_user_ids", {"user_id": "u1"}),
    ],
)
def test_turning_one_step_off_leaves_its_data_untouched(switch: str, untouched: dict[str, Any]) -> None:
    row = hostile_row()
    off = replace(PrivacySettings(), **{switch: False})

    apply(row, off)

    for field, value in untouched.items():
        if field == "properties":
            assert {k: row["properties"][k] for k in value} == value
        else:
            assert row[field] == value
    on = hostile_row()
    apply(on)
    assert on != row  # the same step on does change them


# --- sampling ----------------------------------------------------------------------------------


def test_the_sampling_key_is_the_user_else_the_session_else_the_event() -> None:
    assert sampling_key("u", "s", "e") == "u"
    assert sampling_key(None, "s", "e") == "s"
    assert sampling_key(None, None, "e") == "e"
    assert sampling_key(None, None, None) is None


def test_sampling_gives_the_same_answer_for_a_key_in_every_process() -> None:
    keys = [f"user-{i}" for i in range(12)]

    kept = [k for k in keys if is_sampled_in(k, 0.5)]

    # Pinned: Python's hash() is salted per process, so a sampler built on it could not match this.
    assert kept == ["user-0", "user-5", "user-6", "user-7", "user-8", "user-9", "user-11"]
    assert [k for k in keys if is_sampled_in(k, 0.5)] == kept


def test_rate_one_and_a_missing_key_always_keep() -> None:
    assert all(is_sampled_in(f"k{i}", 1.0) for i in range(1000))
    assert is_sampled_in(None, 0.01)


def test_half_rate_keeps_roughly_half_of_ten_thousand_users() -> None:
    kept = sum(is_sampled_in(f"user-{i}", 0.5) for i in range(10_000))

    assert 4_500 <= kept <= 5_500


def test_a_user_kept_at_a_rate_is_kept_at_every_higher_rate() -> None:
    for i in range(2_000):
        key = f"user-{i}"
        if is_sampled_in(key, 0.2):
            assert is_sampled_in(key, 0.5)


def test_a_kept_user_keeps_all_their_events_and_a_dropped_user_loses_all() -> None:
    for user in (f"user-{i}" for i in range(200)):
        decisions = {is_sampled_in(sampling_key(user, f"s{j}", f"e{j}"), 0.3) for j in range(20)}
        assert len(decisions) == 1


def test_a_sample_rate_outside_0_to_1_is_refused() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        PrivacySettings(sample_rate=0.0)
    with pytest.raises(ValueError, match="sample_rate"):
        PrivacySettings(sample_rate=1.5)


# --- properties over wide input ----------------------------------------------------------------

SIMPLE_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.-]+")

pii_fragments = st.sampled_from(
    ["a@b.co", "x.y+z@ex-ample.com", "user@10.0.0.1", "10.0.0.1", "255.255.255.255", "::1", "fe80::1",
     "2001:db8::7334", "::ffff:1.2.3.4", "4111 1111 1111 1111", "4111111111111111", "4111-1111-1111-1112",
     "Bearer abc", "bearer x.y", JWT, "eyJa.b.c", "12:30:45", "a::b", "[redacted:card]", "eyJ", "Bearer"]
)  # fmt: skip
emails = st.builds(
    "{}@{}.{}".format,
    st.text(alphabet=string.ascii_letters + string.digits + "._%+-", min_size=1, max_size=10),
    st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=10),
    st.sampled_from(["com", "io", "co.uk", "xn--p1ai"]),
)
glue = st.text(alphabet=" .:-_@[]()+%/aeyJbx0123456789\n", max_size=5)
pii_text = st.lists(st.one_of(pii_fragments, emails, glue, st.text(max_size=8)), max_size=10).map("".join)


@settings(max_examples=150)
@given(pii_text)
def test_scrub_text_never_leaves_an_email_address(text: str) -> None:
    out, _ = scrub_text(text)

    assert SIMPLE_EMAIL.search(out) is None


@settings(max_examples=150)
@given(pii_text)
def test_scrub_text_is_idempotent(text: str) -> None:
    once, _ = scrub_text(text)

    assert scrub_text(once) == (once, [])


@given(st.text(max_size=2_000))
def test_scrub_text_terminates_fast_on_arbitrary_text(text: str) -> None:
    # The hypothesis deadline (200 ms per example) is the bound.
    scrub_text(text)


url_text = st.one_of(
    st.text(),
    st.builds(
        lambda scheme, parts, tail: scheme + "/".join(parts) + tail,
        st.sampled_from(["", "/", "https://h.example/", "//cdn/", "x-y://a@b:1/"]),
        st.lists(st.text(alphabet="abc123-_[]?#.%", max_size=10), max_size=6),
        st.text(alphabet="?#=&a1/", max_size=10),
    ),
)


@given(url_text)
def test_anonymize_url_never_keeps_a_query_or_fragment_and_is_stable(url: str) -> None:
    out = anonymize_url(url)

    assert "?" not in out
    assert "#" not in out
    assert anonymize_url(out) == out


keys = st.sampled_from(
    ["note", "url", "href", "page", "next_url", "pageUrl", "items", "userEmail", "X-Api-Key", "ssn",
     "className", "a", "b"]
)  # fmt: skip
short_pii_text = st.lists(st.one_of(pii_fragments, glue), max_size=4).map("".join)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    short_pii_text,
    st.sampled_from(["/u/12345?x=1", "https://h.example/p/abc-123-def-456#f", "/docs/intro"]),
)
json_values = st.recursive(
    leaves,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
    max_leaves=10,
)
rows = st.fixed_dictionaries(
    {
        "event_type": st.just("page_view"),
        "name": st.one_of(st.none(), short_pii_text),
        "user_id": st.one_of(st.none(), st.text(max_size=10)),
        "page": st.one_of(st.none(), url_text),
        "properties": st.one_of(st.none(), st.dictionaries(keys, json_values, max_size=5)),
    },
    optional={"ip": st.text(max_size=15)},
)


@settings(max_examples=100)
@given(rows)
def test_apply_is_idempotent_on_its_own_output(row: dict[str, Any]) -> None:
    pipeline = PrivacyPipeline(replace(PrivacySettings(), hash_user_ids=False), SALT)
    pipeline.apply(row)
    stored = copy.deepcopy(row)

    assert pipeline.apply(row) == []
    assert row == stored
