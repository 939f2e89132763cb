"""Electronic signatures on records that decide the fate of product (21 CFR Part 11, Annex 11).

Four actions are signed: a lot disposition (release or reject), a recall hold, closing an
excursion, confirming a cycle count. The signer re-enters their password (and TOTP code when
enrolled) at the moment of signing (``cloud.accounts.store.verify_person``: failures count
towards lock-out) and picks a meaning; the signature (user id, printed name, time, meaning,
factors) is stored in ``e_signatures`` with a sha256 binding it to the record's content and
the hashes of the ledger entries the action wrote (``core.content_hash``).

Reading them (reports, pages, API): ``store.signatures_for(conn, subjects)`` or
``store.signatures_for_entries(conn, entry_ids)``, both returning ``core.Signature``.

Exceptions::

    SignatureError           any refusal of this room
    ├── MeaningError         the meaning does not fit the action (e.g. "rejected" on a release)
    └── NotTheSignerError    the credentials are another user's than the request's
"""

from __future__ import annotations


class SignatureError(Exception):
    """A signature refused."""


class MeaningError(SignatureError):
    """A meaning that does not fit the signed action."""


class NotTheSignerError(SignatureError):
    """Someone tried to sign in another user's name."""
