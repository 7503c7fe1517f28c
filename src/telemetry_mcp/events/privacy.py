"""The privacy pipeline (SPEC section 3): sampling, field exclusion, scrubbing, URL anonymization, hashing.

Pure functions over plain values, no I/O. The caller drops do-not-track events and applies sampling
with `sampling_key` / `is_sampled_in`; `PrivacyPipeline.apply` does steps 3 to 7 on a validated row.

Every regex here is linear on hostile input: repeated character classes are possessive or stop at a
character they cannot contain, and each pattern may only *start* where the run it begins cannot be
extended backwards (a lookbehind), so no text is rescanned from every position.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from itertools import accumulate

__all__ = [
    "PrivacyPipeline",
    "PrivacySettings",
    "anonymize_url",
    "hash_user_id",
    "is_sampled_in",
    "sampling_key",
    "scrub_text",
]


@dataclass(frozen=True)
class PrivacySettings:
    """Which privacy steps run (each on by default, as SPEC section 3 requires)."""

    honor_dnt: bool = True
    sample_rate: float = 1.0  # 0 < r <= 1
    exclude_fields: bool = True
    excluded_paths: tuple[str, ...] = ("properties.password", "properties.token")
    scrub_values: bool = True
    anonymize_urls: bool = True
    hash_user_ids: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in (0, 1], got {self.sample_rate}")


# --- sampling and hashing ----------------------------------------------------------------------


def sampling_key(user_id: str | None, session_id: str | None, event_id: str | None) -> str | None:
    """The identity sampling is decided on: user_id, else session_id, else event_id (None if none)."""
    for key in (user_id, session_id, event_id):
        if key:
            return key
    return None


def is_sampled_in(key: str | None, rate: float) -> bool:
    """Whether events with this sampling key are kept at `rate`; the same key always gets the same answer.

    The raw key is hashed with SHA-256 (stable across processes, unlike `hash()`) to a point in [0, 1).
    """
    if key is None or rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    point = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return point < rate


def hash_user_id(user_id: str, salt: bytes) -> str:
    """The stored form of a user id: HMAC-SHA256 keyed by the store's salt, first 16 hex characters."""
    return hmac.new(salt, user_id.encode(), hashlib.sha256).hexdigest()[:16]


# --- value scrubbing -----------------------------------------------------------------------------
#
# Patterns run one after another in this order; each sees the previous ones' output. A pattern that
# refuses to start after a word character also refuses to start after "]" (and refuses to end before
# "[" where it refuses digits), so that a neighbour redacted by a *later* pattern cannot make a second
# run find something new: scrub_text is idempotent.

_BEARER = re.compile(r"(?<![\w\]])(?i:bearer)\s++[A-Za-z0-9._~+/=-]++")
_JWT = re.compile(r"(?<![\w\]-])eyJ[A-Za-z0-9_-]*+\.[A-Za-z0-9_-]++\.[A-Za-z0-9_-]*+")
# \w so that internationalised addresses are caught too; the local part starts at the start of its run.
_EMAIL_AT = re.compile(r"[\w.%+-]++@[\w-]++(?:\.[\w-]++)+")
_EMAIL = re.compile(r"(?<![\w.%+-])" + _EMAIL_AT.pattern)
# A candidate only; ipaddress decides. Bounded repetition, so at most ~45 characters per attempt.
_IPV6 = re.compile(
    r"(?<![0-9A-Za-z:.\]])(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4})?"
    r"(?![0-9A-Za-z:\[]|\.[0-9\[])"
)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# Not part of a longer dotted number such as a version "1.2.3.4.5".
# Not right after "Product/" (a version such as Chrome/120.0.0.0 in a user agent is not an address).
_IPV4 = re.compile(
    rf"(?<![A-Za-z]/)(?<![0-9\]])(?<![0-9\]]\.)(?:{_OCTET}\.){{3}}{_OCTET}(?![0-9\[])(?!\.[0-9\[])"
)
# Groups of 3+ digits joined by single spaces or dashes (card numbers are written 4-4-4-4, 4-6-5,
# 4-4-4-4-3 ...); card numbers are looked for inside, aligned on whole groups.
_DIGIT_RUN = re.compile(r"[0-9]{3,}+(?:[ -][0-9]{3,}+)*+")
_DIGITS = re.compile(r"[0-9]+")
_CARD_MAX_GROUPS = 5
_DIGIT_VALUE = bytes.maketrans(b"0123456789", bytes(range(10)))
_DOUBLED_VALUE = bytes.maketrans(b"0123456789", bytes((0, 2, 4, 6, 8, 1, 3, 5, 7, 9)))


def _luhn_prefix_sums(digits: str) -> tuple[list[int], list[int]]:
    """Prefix sums that give the Luhn sum of any slice digits[s:e] in O(1).

    Luhn doubles every second digit counted from the right end, i.e. the positions with the same
    parity as e: use the first list when e is even, the second when it is odd. Built in C (bytes,
    accumulate) because a long hostile run may hold tens of thousands of candidate windows.
    """
    raw = digits.encode()
    plain, doubled = raw.translate(_DIGIT_VALUE), raw.translate(_DOUBLED_VALUE)
    even, odd = bytearray(plain), bytearray(plain)
    even[0::2], odd[1::2] = doubled[0::2], doubled[1::2]
    return list(accumulate(even, initial=0)), list(accumulate(odd, initial=0))


def _redact_emails(token: str, text: str) -> tuple[str, int]:
    parts: list[str] = []
    pos = n = 0
    m = _EMAIL.search(text)
    while m:
        parts += (text[pos : m.start()], token)
        pos, n = m.end(), n + 1
        # Local-part characters right after a redacted address ("a@b.co+x@c.com") start the next
        # one: the lookbehind still sees the original text, a second pass would see "]".
        m = _EMAIL_AT.match(text, pos) or _EMAIL.search(text, pos)
    parts.append(text[pos:])
    return "".join(parts), n


def _redact_ipv6(token: str, text: str) -> tuple[str, int]:
    n = 0

    def one(m: re.Match[str]) -> str:
        nonlocal n
        candidate = m.group()
        if not any(c not in ":." for c in candidate):
            return candidate  # a bare "::" is punctuation far more often than an address
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            return candidate
        n += 1
        return token

    return _IPV6.sub(one, text), n


def _redact_cards(token: str, text: str) -> tuple[str, int]:
    """Redact each Luhn-valid window of 13-19 digits made of whole groups of a digit run.

    Windows rather than whole runs, so that a card number after another number ("order 1234
    4111 1111 1111 1111") is still found; whole groups, so that a long account number is not cut.
    """
    parts: list[str] = []
    pos = n = 0
    for run in _DIGIT_RUN.finditer(text):
        if run.end() - run.start() < 13:
            continue
        spans = [g.span() for g in _DIGITS.finditer(text, run.start(), run.end())]
        # offsets[k]: index in the run's digits (separators dropped) where group k starts
        offsets = list(accumulate((e - s for s, e in spans), initial=0))
        sums = _luhn_prefix_sums(run.group().replace(" ", "").replace("-", ""))
        i = 0
        while i < len(spans):
            last = -1
            for j in range(i + 1, min(i + _CARD_MAX_GROUPS, len(spans)) + 1):
                s, e = offsets[i], offsets[j]
                if e - s > 19:
                    break
                if e - s >= 13 and (sums[e % 2][e] - sums[e % 2][s]) % 10 == 0:
                    last = j - 1  # keep the longest valid window from this group
            if last < 0:
                i += 1
                continue
            parts += (text[pos : spans[i][0]], token)
            pos, n, i = spans[last][1], n + 1, last + 1
    parts.append(text[pos:])
    return "".join(parts), n


# (kind, a lower-case substring every match contains, redactor(token, text) -> (text, count))
_SCRUBBERS: tuple[tuple[str, str, Callable[[str, str], tuple[str, int]]], ...] = (
    # Bearer first: the token after "Bearer" may itself be a JWT; the whole credential goes.
    ("bearer", "bearer", _BEARER.subn),
    ("jwt", "eyj", _JWT.subn),
    # Before the IP patterns so that "user@10.0.0.1" is one e-mail address.
    ("email", "@", _redact_emails),
    # Before IPv4 so that "::ffff:10.0.0.1" is one IPv6 address.
    ("ipv6", ":", _redact_ipv6),
    ("ipv4", ".", _IPV4.subn),
    ("card", "", _redact_cards),
)


# Every kind needs one of these: e-mail "@", IPv6 ":", IPv4 and JWT ".", card digits, bearer itself.
_MAYBE_SENSITIVE = re.compile(r"[@:.0-9]|(?i:bearer)")


def scrub_text(text: str) -> tuple[str, list[str]]:
    """Redact e-mail addresses, IPv4/IPv6 addresses, JWTs, bearer tokens and Luhn-valid card numbers.

    Each becomes "[redacted:<kind>]". Returns the new text and the kinds found, in pattern order,
    each once. Digit runs failing the Luhn check are left alone. Linear time on any input.
    """
    kinds: list[str] = []
    if not _MAYBE_SENSITIVE.search(text):  # the common case: a short label, nothing to look for
        return text, kinds
    lowered = text.lower()
    for kind, hint, redact in _SCRUBBERS:
        if hint not in lowered:  # most values contain none of these: skip the scan
            continue
        text, n = redact(f"[redacted:{kind}]", text)
        if n:
            kinds.append(kind)
            lowered = text.lower()
    return text, kinds


# --- URL anonymization ---------------------------------------------------------------------------

_SCHEME_AUTHORITY = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*+:)?//[^/]*+")
_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*+://")
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_HEX8 = re.compile(r"[0-9A-Fa-f]{8,}")
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _is_id_like(segment: str) -> bool:
    if segment.isascii() and segment.isdigit():
        return True
    if _UUID.fullmatch(segment) or _HEX8.fullmatch(segment):
        return True
    # Long and mixing letters with digits: a slug like "getting-started" survives, "a1b2c3d4" does not.
    return (
        len(segment) >= 8
        and set(segment) <= _ID_CHARS
        and any(c.isdigit() for c in segment)
        and any(c.isalpha() for c in segment)
    )


def anonymize_url(url: str) -> str:
    """Drop the query and fragment and replace id-like path segments with "[id]".

    Id-like: all digits, a UUID, hex of 8+ characters, or 8+ characters mixing letters and digits.
    Scheme and host of an absolute URL are kept; user:password@ in front of the host is dropped.
    `"/profile/abc-123-def-456?tab=settings"` → `"/profile/[id]"`.
    """
    url = url.split("#", 1)[0].split("?", 1)[0]
    prefix = ""
    m = _SCHEME_AUTHORITY.match(url)
    if m:
        prefix, url = m.group(), url[m.end() :]
        head, sep, authority = prefix.partition("//")
        prefix = head + sep + authority.rpartition("@")[2]  # credentials are never worth keeping
    return prefix + "/".join("[id]" if _is_id_like(s) else s for s in url.split("/"))


# --- the pipeline --------------------------------------------------------------------------------

# Compared against the key lower-cased with separators removed, so "X-Api-Key", "apiKey" and
# "api_key" all match "apikey".
_SECRET_PARTS = ("password", "passwd", "secret", "token", "apikey", "authorization", "cookie", "email",
                 "creditcard")  # fmt: skip
# "ssn" only as a whole word: as a substring it would take "className", a staple of UI telemetry.
_SSN_WORD = re.compile(r"(?:^|[^a-z])ssn(?:$|[^a-z])")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_URL_KEYS = frozenset(("url", "uri", "href", "link", "path", "page", "pathname", "referrer", "referer"))


@lru_cache(maxsize=4096)  # the same few property names come back on every event
def _is_secret_key(key: str) -> bool:
    squashed = "".join(c for c in key.lower() if c.isalnum())
    if any(part in squashed for part in _SECRET_PARTS):
        return True
    return _SSN_WORD.search(_CAMEL.sub("_", key).lower()) is not None


def _is_url_value(key: str, value: str) -> bool:
    if _HAS_SCHEME.match(value):
        return True
    if not value.startswith("/"):
        return False
    # PostHog's own keys carry a "$" ($pathname, $session_entry_pathname, $initial_current_url)
    bare = key.lstrip("$")
    return (
        bare.lower() in _URL_KEYS
        or bare.endswith(("_url", "_uri", "_path", "_pathname"))
        or bare.endswith(("Url", "Uri", "Path", "Pathname"))
    )


class PrivacyPipeline:
    """Steps 3-7 of SPEC section 3, applied in place to one validated event row."""

    def __init__(self, settings: PrivacySettings, salt: bytes) -> None:
        self.settings = settings
        self.salt = salt
        self._excluded = [tuple(p.split(".")) for p in settings.excluded_paths if p]
        # The same users come back event after event; one HMAC each is enough.
        self._hash_user_id = lru_cache(maxsize=65_536)(partial(hash_user_id, salt=salt))
        # Labels, names and pages repeat across events: clean each distinct short value once.
        self._clean_cached = lru_cache(maxsize=65_536)(self._clean_uncached)
        self._scrub_cached = lru_cache(maxsize=16_384)(scrub_text)
        self._page_cached = lru_cache(maxsize=16_384)(self._clean_page)

    def apply(self, row: dict[str, object]) -> list[str]:
        """Exclude, scrub, anonymize and hash `row` in place; return the paths removed or changed.

        Paths are dotted with list indexes in brackets ("properties.items[2].note"), each listed once.
        Hashing user_id is not a redaction and is not listed; "ip" is always removed.
        """
        s = self.settings
        changed: list[str] = []
        if s.exclude_fields:
            changed += [".".join(parts) for parts in self._excluded if _remove_path(row, parts)]
        props = row.get("properties")
        if isinstance(props, dict):
            self._walk_dict(props, "properties", changed)
        name = row.get("name")
        if s.scrub_values and isinstance(name, str):
            row["name"], kinds = self._scrub_cached(name) if len(name) <= 200 else scrub_text(name)
            if kinds:
                changed.append("name")
        page = row.get("page")
        if isinstance(page, str):
            row["page"] = self._page_cached(page)
            if row["page"] != page:
                changed.append("page")
        user_id = row.get("user_id")
        if s.hash_user_ids and isinstance(user_id, str):
            row["user_id"] = self._hash_user_id(user_id)
        # Never stored, whatever the settings: an IP address identifies a person.
        if row.pop("ip", None) is not None:
            changed.append("ip")
        return list(dict.fromkeys(changed))

    def _walk_dict(self, node: dict[str, object], path: str, changed: list[str]) -> None:
        for key, value in list(node.items()):
            here = f"{path}.{key}"
            if self.settings.exclude_fields and _is_secret_key(key):
                del node[key]
                changed.append(here)
            elif isinstance(value, str):
                new = self._clean(key, value)
                if new != value:
                    node[key] = new
                    changed.append(here)
            else:
                self._walk_value(value, key, here, changed)

    def _walk_value(self, value: object, owner: str, path: str, changed: list[str]) -> None:
        """Recurse into containers; `owner` is the property a list item sits under (for URL keys)."""
        if isinstance(value, dict):
            self._walk_dict(value, path, changed)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                here = f"{path}[{i}]"
                if isinstance(item, str):
                    new = self._clean(owner, item)
                    if new != item:
                        value[i] = new
                        changed.append(here)
                else:
                    self._walk_value(item, owner, here, changed)

    def _clean_page(self, page: str) -> str:
        # Beyond the SPEC's step 5: a page path can carry an e-mail or IP too ("/users/ann@x.com").
        if self.settings.anonymize_urls:
            page = anonymize_url(page)
        if self.settings.scrub_values:
            page, _ = scrub_text(page)
        return page

    def _clean(self, key: str, value: str) -> str:
        if len(value) <= 256:
            return self._clean_cached(key, value)
        return self._clean_uncached(key, value)

    def _clean_uncached(self, key: str, value: str) -> str:
        if self.settings.scrub_values:
            value, _ = scrub_text(value)
        if self.settings.anonymize_urls and _is_url_value(key, value):
            value = anonymize_url(value)
        return value


def _remove_path(row: dict[str, object], parts: tuple[str, ...]) -> bool:
    """Delete a configured dotted path such as properties.a.b; False when it is not there."""
    node: object = row
    for part in parts[:-1]:
        if not isinstance(node, dict):
            return False
        node = node.get(part)
    if isinstance(node, dict) and parts[-1] in node:
        del node[parts[-1]]
        return True
    return False
