"""Password rules (NIST SP 800-63B 3.1.1.2) and argon2id hashing; pure.

Rules: a minimum length (12 by default), at most 256 characters (any printable Unicode, spaces
included, normalised NFKC), not the user name, not a commonly used password. No composition
rules (digits, capitals, symbols) and no periodic change, as SP 800-63B asks.

>>> problems("correct horse battery", username="ana")
[]
>>> problems("password1234", username="ana")
['is a commonly used password']
>>> verify_password(hash_password("a long passphrase"), "a long passphrase")
True
"""

from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_LENGTH = 256

# The most common passwords of at least 12 characters in public breach corpora, and the obvious
# ones for this trade; SP 800-63B asks for a check against such a list.
BLOCKLIST = frozenset(
    {
        "password1234", "password12345", "password123456", "123456789012", "1234567890123",
        "12345678901234", "qwertyuiop12", "qwertyuiopasdf", "qwerty123456", "1q2w3e4r5t6y",
        "1qaz2wsx3edc", "abcdefghijkl", "abc123456789", "iloveyou1234", "welcome12345",
        "letmein12345", "administrator", "passw0rd1234", "p@ssw0rd1234", "changeme1234",
        "adminadmin12", "aaaaaaaaaaaa", "111111111111", "000000000000", "trustno1trustno1",
        "coldtrace123", "coldtrace1234", "coldchain123", "pharmacy1234", "hospital1234",
        "warehouse123", "temperature1", "passwordpassword", "qwertyqwerty", "monkeymonkey",
        "football1234", "baseball1234", "superman1234", "sunshine1234", "princess1234",
        "dragon123456", "master123456", "shadow123456", "starwars1234", "whatever1234",
    }
)  # fmt: skip

# argon2-cffi's defaults follow RFC 9106's second recommendation (argon2id, 64 MiB, t=3).
_HASHER = PasswordHasher()


def normalise(password: str) -> str:
    """NFKC, so the same passphrase typed on another keyboard still matches (SP 800-63B)."""
    return unicodedata.normalize("NFKC", password)


def problems(password: str, *, username: str, min_length: int = 12) -> list[str]:
    """What is wrong with a new password (empty: acceptable)."""
    text = normalise(password)
    found: list[str] = []
    if len(text) < min_length:
        found.append(f"must have at least {min_length} characters")
    if len(text) > MAX_LENGTH:
        found.append(f"must have at most {MAX_LENGTH} characters")
    if any(unicodedata.category(c) == "Cc" for c in text):
        found.append("must not contain control characters")
    lowered = text.casefold()
    if username and username.casefold() in lowered:
        found.append("must not contain the user name")
    if lowered in BLOCKLIST or len(set(lowered)) < 3:
        found.append("is a commonly used password")
    return found


def hash_password(password: str) -> str:
    return _HASHER.hash(normalise(password))


def verify_password(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, normalise(password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(stored)


# A hash to verify against when the user does not exist, so a wrong name costs the same time
# as a wrong password and timing does not tell which names exist.
DUMMY_HASH = _HASHER.hash("coldtrace: no such user")
