"""Ed25519 signatures on ledger entries and chain heads, with a key held outside the database.

A hash chain only shows a change that was not followed by re-hashing: whoever can write the
database (a superuser) can append a forged "QA release" and recompute every hash after it. Each
entry therefore also carries the service's signature over its hash, made with a private key the
database never sees; ``coldtrace ledger verify`` checks it against the public key. Signing the
hash signs the whole entry and, through ``prev_hash``, its place in the chain.

The signer reaches ``store.post`` through a context variable that the composition root binds
(``bound``, ``BindSigner`` for requests) rather than through every caller: ledger writes start in
a dozen rooms (receiving, cold chain, recall, counts, API), and a binding the service makes once
cannot be forgotten by one of them. Without a binding entries are written unsigned, and verify,
given the public key, reports them.

Keys: PKCS#8 PEM (``openssl genpkey -algorithm ed25519``, ``coldtrace ledger keygen``) or the
base64 of the 32 raw private bytes, from a file or an environment variable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from starlette.types import ASGIApp, Receive, Scope, Send

from cloud.ledger import LedgerError

ENTRY_CONTEXT = b"coldtrace ledger entry v1\x00"
HEAD_CONTEXT = b"coldtrace ledger head v1\x00"


class SigningKeyError(LedgerError):
    """A signing or public key could not be read."""


def key_id(public: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 8 bytes of sha256 over its raw bytes, hex.

    RFC 8032 section 7.1, TEST 1: this secret key's public key is d75a9801…511a.

    >>> secret = bytes.fromhex(
    ...     "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    >>> key_id(Ed25519PrivateKey.from_private_bytes(secret).public_key())
    '21fe31dfa154a261'
    """
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _head_message(entry_id: int, entry_hash: bytes) -> bytes:
    return HEAD_CONTEXT + entry_id.to_bytes(8, "big") + entry_hash


@dataclass(frozen=True)
class LedgerSigner:
    """The service's private key.

    >>> signer = LedgerSigner(Ed25519PrivateKey.from_private_bytes(bytes(32)))
    >>> keys = TrustedKeys.of(signer.public_key)
    >>> keys.entry_ok(signer.key_id, b"h" * 32, signer.sign_entry(b"h" * 32))
    True
    >>> keys.entry_ok(signer.key_id, b"x" * 32, signer.sign_entry(b"h" * 32))
    False
    """

    private: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign_entry(self, entry_hash: bytes) -> bytes:
        return self.private.sign(ENTRY_CONTEXT + entry_hash)

    def sign_head(self, entry_id: int, entry_hash: bytes) -> bytes:
        return self.private.sign(_head_message(entry_id, entry_hash))

    def private_pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def generate(cls) -> LedgerSigner:
        return cls(Ed25519PrivateKey.generate())


@dataclass(frozen=True)
class TrustedKeys:
    """Public keys whose signatures verify accepts, by key id (old keys stay after a rotation)."""

    keys: dict[str, Ed25519PublicKey]

    @classmethod
    def of(cls, *publics: Ed25519PublicKey) -> TrustedKeys:
        return cls({key_id(p): p for p in publics})

    def entry_ok(self, kid: str, entry_hash: bytes, signature: bytes) -> bool:
        return self._ok(kid, ENTRY_CONTEXT + entry_hash, signature)

    def head_ok(self, kid: str, entry_id: int, entry_hash: bytes, signature: bytes) -> bool:
        return self._ok(kid, _head_message(entry_id, entry_hash), signature)

    def _ok(self, kid: str, message: bytes, signature: bytes) -> bool:
        public = self.keys.get(kid)
        if public is None:
            return False
        try:
            public.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def load_signer(data: bytes) -> LedgerSigner:
    """A private key from PKCS#8 PEM or base64 of the 32 raw bytes.

    The signature of the empty message is RFC 8032's TEST 1 vector (e5564300…7a100b):

    >>> signer = load_signer(base64.b64encode(bytes.fromhex(
    ...     "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")))
    >>> signer.private.sign(b"").hex()[:16], signer.key_id
    ('e5564300c360ac72', '21fe31dfa154a261')
    >>> load_signer(signer.private_pem()).key_id
    '21fe31dfa154a261'
    >>> load_signer(b"nonsense")
    Traceback (most recent call last):
    ...
    cloud.ledger.signing.SigningKeyError: not an Ed25519 private key (PEM or 32 base64 bytes)
    """
    text = data.strip()
    try:
        if text.startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(text, password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise SigningKeyError("the PEM key is not an Ed25519 key")
            return LedgerSigner(key)
        raw = base64.b64decode(text, validate=True)
        if len(raw) == 32:
            return LedgerSigner(Ed25519PrivateKey.from_private_bytes(raw))
    except (ValueError, TypeError, binascii.Error) as err:
        raise SigningKeyError(f"cannot read the private key: {err}") from err
    raise SigningKeyError("not an Ed25519 private key (PEM or 32 base64 bytes)")


def load_public(data: bytes) -> Ed25519PublicKey:
    """A public key from PEM; a private key's PEM (or base64) gives its public half."""
    text = data.strip()
    if text.startswith(b"-----BEGIN PUBLIC KEY"):
        try:
            key = serialization.load_pem_public_key(text)
        except ValueError as err:
            raise SigningKeyError(f"cannot read the public key: {err}") from err
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError("the public key is not an Ed25519 key")
        return key
    return load_signer(text).public_key


_current: ContextVar[LedgerSigner | None] = ContextVar("coldtrace_ledger_signer", default=None)


def current() -> LedgerSigner | None:
    """The signer bound for this task (None: entries are written unsigned)."""
    return _current.get()


@contextmanager
def bound(signer: LedgerSigner | None) -> Iterator[None]:
    """Binds ``signer`` for the block and every task created inside it."""
    token = _current.set(signer)
    try:
        yield
    finally:
        _current.reset(token)


class BindSigner:
    """ASGI middleware: every request runs with the service's signer bound."""

    def __init__(self, app: ASGIApp, signer: LedgerSigner | None) -> None:
        self.app = app
        self.signer = signer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with bound(self.signer):
            await self.app(scope, receive, send)
