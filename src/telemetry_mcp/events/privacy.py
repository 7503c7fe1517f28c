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
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]++@[\w-]++(?:\.[\w-]++)+")
# A candidate only; ipaddress decides. Bounded repetition, so at most ~45 characters per attempt.
_IPV6 = re.compile(
    r"(?<![0-9A-Za-z:.\]])(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4})?"
    r"(?![0-9A-Za-z:\[]|\.[0-9])"
)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# Not part of a longer dotted number such as a version "1.2.3.4.5".
_IPV4 = re.compile(rf"(?<![0-9\]])(?<![0-9\]]\.)(?:{_OCTET}\.){{3}}{_OCTET}(?![0-9\[])(?!\.[0-9\[])")
# 13-19 digits, single spaces or dashes between them; must be the whole digit run, Luhn decides.
_CARD = re.compile(r"(?<![0-9\]])(?<![0-9\]][ -])[0-9](?:[ -]?[0-9]){12,18}(?![ -]?[0-9\[])")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_ipv6(candidate: str) -> bool:
    if not any(c not in ":." for c in candidate):
        return False  # a bare "::" is punctuation far more often than an address
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


def _is_card(candidate: str) -> bool:
    return _luhn_ok(candidate.replace(" ", "").replace("-", ""))


# (kind, pattern, a lower-case substring any match contains, validator of a candidate)
_SCRUBBERS: tuple[tuple[str, re.Pattern[str], str, Callable[[str], bool] | None], ...] = (
    # Bearer first: the token after "Bearer" may itself be a JWT; the whole credential goes.
    ("bearer", _BEARER, "bearer", None),
    ("jwt", _JWT, "eyj", None),
    # Before the IP patterns so that "user@10.0.0.1" is one e-mail address.
    ("email", _EMAIL, "@", None),
    # Before IPv4 so that "::ffff:10.0.0.1" is one IPv6 address.
    ("ipv6", _IPV6, ":", _is_ipv6),
    ("ipv4", _IPV4, ".", None),
    ("card", _CARD, "", _is_card),
)


def scrub_text(text: str) -> tuple[str, list[str]]:
    """Redact e-mail addresses, IPv4/IPv6 addresses, JWTs, bearer tokens and Luhn-valid card numbers.

    Each becomes "[redacted:<kind>]". Returns the new text and the kinds found, in pattern order,
    each once. Digit runs failing the Luhn check are left alone. Linear time on any input.
    """
    kinds: list[str] = []
    lowered = text.lower()
    for kind, pattern, hint, valid in _SCRUBBERS:
        if hint not in lowered:  # most values contain none of these: skip the regex scan
            continue
        token = f"[redacted:{kind}]"
        if valid is None:
            text, n = pattern.subn(token, text)
        else:
            n = 0

            def replace(m: re.Match[str], token: str = token, valid: Callable[[str], bool] = valid) -> str:
                nonlocal n
                if not valid(m.group()):
                    return m.group()
                n += 1
                return token

            text = pattern.sub(replace, text)
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
    return key.lower() in _URL_KEYS or key.endswith(("_url", "_uri", "Url", "Uri"))


class PrivacyPipeline:
    """Steps 3-7 of SPEC section 3, applied in place to one validated event row."""

    def __init__(self, settings: PrivacySettings, salt: bytes) -> None:
        self.settings = settings
        self.salt = salt
        self._excluded = [tuple(p.split(".")) for p in settings.excluded_paths if p]

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
            row["name"], kinds = scrub_text(name)
            if kinds:
                changed.append("name")
        page = row.get("page")
        if s.anonymize_urls and isinstance(page, str):
            row["page"] = anonymize_url(page)
            if row["page"] != page:
                changed.append("page")
        user_id = row.get("user_id")
        if s.hash_user_ids and isinstance(user_id, str):
            row["user_id"] = hash_user_id(user_id, self.salt)
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

    def _clean(self, key: str, value: str) -> str:
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
