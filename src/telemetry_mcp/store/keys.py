"""The stored 64-bit keys: `actor` and `session_key` (UBIGINT columns since migration 006).

An actor is the hashed user id, else the session, else the event. Its key is a function of what
version 1 stored as the actor's text (`user_id`, else 's:' || session_id, else 'e:' || event_id), so
analyses count exactly the same actors: a user hash (16 lower-case hex characters) is its own 64
bits; any other text (a session, an event, a raw user id under --no-hash-user-ids) is its 8-byte
BLAKE2b digest. An explicit session's key is the digest of 'x:' || session_id. A derived session's
key is computed in SQL (`DERIVED_KEY_SQL`) from the actor and the session's first timestamp, so it
does not change when later sessions of the actor do, and the start is recovered from the key
(`START_OF_KEY_SQL`). Keys are random-looking 64-bit values; two different actors or sessions share
one with probability about 2^-64 per pair.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

_USER_HASH = re.compile(r"[0-9a-f]{16}")

# SQL of a derived session's key from `actor` and the session's first `ts` (µs since 1970, ≥ 0:
# timestamps before 1970 are rejected at ingest), and back from the key to the start.
DERIVED_KEY_SQL = "xor({actor}, epoch_us({start})::UBIGINT)"
START_OF_KEY_SQL = "make_timestamp(xor({key}, {actor})::BIGINT)"


def text_key(text: str) -> int:
    """The 64-bit key of a text: its BLAKE2b digest of 8 bytes, big-endian."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@lru_cache(maxsize=262_144)
def actor_text_key(actor: str) -> int:
    """The key of an actor given as version 1's text: a user hash's own bits, else the digest."""
    return int(actor, 16) if _USER_HASH.fullmatch(actor) else text_key(actor)


def actor_key(user_id: str | None, session_id: str | None, event_id: str) -> int:
    """The actor of an event: its stored user_id, else its session, else the event itself."""
    if user_id is not None:
        return actor_text_key(user_id)
    if session_id is not None:
        return actor_text_key("s:" + session_id)
    return text_key("e:" + event_id)


@lru_cache(maxsize=262_144)
def explicit_session_key(session_id: str) -> int:
    """The key of an explicit session (its session_id given by the client)."""
    return text_key("x:" + session_id)
