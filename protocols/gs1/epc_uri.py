"""EPC URIs (TDS §6 pure identity, §12 tag URI) to typed EPC values.

Re-exported by ``protocols.gs1.epc``; kept apart because URI grammar and bit layout change for
different reasons.

>>> parse_epc_uri("urn:epc:tag:sgtin-96:3.0614141.812345.6789").to_hex()
'3074257BF7194E4000001A85'
>>> parse_epc_uri("urn:epc:id:sgtin:0614141.712345.32a%2Fb").serial
'32a/b'
"""

from __future__ import annotations

from collections.abc import Callable

from protocols.gs1 import _tds
from protocols.gs1.epc_types import (
    GRAI_DEFAULT_FILTER,
    SERIAL_BITS_96,
    SGLN_DEFAULT_FILTER,
    SGTIN_DEFAULT_FILTER,
    SSCC_DEFAULT_FILTER,
    Epc,
    Grai,
    Sgln,
    Sgtin,
    SgtinScheme,
    Sscc,
    fits_numeric,
)
from protocols.gs1.errors import EpcSyntaxError, EpcValueError, UnsupportedEpcError

_PURE = "urn:epc:id:"
_TAG = "urn:epc:tag:"


def _parts(body: str, count: int, scheme: str) -> list[str]:
    # The last component of SGTIN and GRAI may itself contain dots (GS1 set 82 has '.'). Empty
    # components are left to the value classes, which say which field is wrong.
    parts = body.split(".", count - 1)
    if len(parts) != count:
        raise EpcSyntaxError(f"{scheme} URI body must have {count} dot-separated parts: {body!r}")
    return parts


def _sgtin(body: str, filter_value: int | None, scheme: str | None) -> Sgtin:
    prefix, reference, escaped = _parts(body, 3, "sgtin")
    serial = _tds.uri_unescape(escaped)
    chosen: SgtinScheme = "sgtin-96"
    if scheme == "sgtin-198" or (scheme is None and not fits_numeric(serial, SERIAL_BITS_96)):
        chosen = "sgtin-198"
    filter_value = SGTIN_DEFAULT_FILTER if filter_value is None else filter_value
    return Sgtin(prefix, reference, serial, filter_value, chosen)


def _sscc(body: str, filter_value: int | None, _scheme: str | None) -> Sscc:
    prefix, reference = _parts(body, 2, "sscc")
    return Sscc(prefix, reference, SSCC_DEFAULT_FILTER if filter_value is None else filter_value)


def _sgln(body: str, filter_value: int | None, _scheme: str | None) -> Sgln:
    prefix, reference, extension = _parts(body, 3, "sgln")
    filter_value = SGLN_DEFAULT_FILTER if filter_value is None else filter_value
    return Sgln(prefix, reference, _tds.uri_unescape(extension), filter_value)


def _grai(body: str, filter_value: int | None, _scheme: str | None) -> Grai:
    prefix, asset_type, serial = _parts(body, 3, "grai")
    filter_value = GRAI_DEFAULT_FILTER if filter_value is None else filter_value
    return Grai(prefix, asset_type, _tds.uri_unescape(serial), filter_value)


_Builder = Callable[[str, int | None, str | None], Epc]
_PURE_SCHEMES: dict[str, _Builder] = {"sgtin": _sgtin, "sscc": _sscc, "sgln": _sgln, "grai": _grai}
_TAG_SCHEMES: dict[str, _Builder] = {
    "sgtin-96": _sgtin,
    "sgtin-198": _sgtin,
    "sscc-96": _sscc,
    "sgln-96": _sgln,
    "grai-96": _grai,
}


def parse_epc_uri(uri: str, *, filter_value: int | None = None) -> Epc:
    """Parse a pure-identity or tag EPC URI into an ``Sgtin``, ``Sscc``, ``Sgln`` or ``Grai``.

    A tag URI fixes the binary scheme and the filter value. A pure-identity URI has neither:
    the filter is ``filter_value`` if given, else the class default, and an SGTIN gets the
    96-bit scheme when its serial fits, else SGTIN-198. ``filter_value`` must not be given
    with a tag URI (it would silently disagree with the URI's own).

    >>> parse_epc_uri("urn:epc:id:sscc:0614141.1234567890").sscc
    '106141412345678908'
    >>> parse_epc_uri("urn:epc:id:sgtin:0614141.812345.0123").scheme
    'sgtin-198'
    >>> parse_epc_uri("urn:epc:tag:sgtin-96:3.0614141.812345.0123")
    Traceback (most recent call last):
    ...
    protocols.gs1.errors.EpcValueError: serial '0123' must not have leading zeros for this scheme
    """
    if not isinstance(uri, str):
        raise EpcSyntaxError(f"EPC URI must be text, got {type(uri).__name__}")
    pieces = uri.split(":", 4)
    if len(pieces) < 3 or pieces[0].lower() != "urn" or pieces[1].lower() != "epc":
        raise EpcSyntaxError(f"not an EPC URI: {uri!r}")
    kind = pieces[2].lower()
    if kind not in ("id", "tag"):
        raise UnsupportedEpcError(f"EPC URI kind {kind!r} is not supported (only id and tag)")
    if len(pieces) != 5:
        raise EpcSyntaxError(f"EPC URI needs a scheme and a body: {uri!r}")
    scheme, body = pieces[3].lower(), pieces[4]
    if kind == "id":
        builder = _PURE_SCHEMES.get(scheme)
        if builder is None:
            raise UnsupportedEpcError(f"EPC scheme {scheme!r} is not supported")
        return builder(body, filter_value, None)
    builder = _TAG_SCHEMES.get(scheme)
    if builder is None:
        raise UnsupportedEpcError(f"EPC tag scheme {scheme!r} is not supported")
    if filter_value is not None:
        raise EpcValueError("a tag URI carries its own filter value; do not pass one")
    head, dot, rest = body.partition(".")
    if len(head) != 1 or head not in "01234567" or not dot:
        raise EpcSyntaxError(f"tag URI must start with a filter value 0-7: {uri!r}")
    return builder(rest, int(head), scheme)
