"""GS1 Digital Link URIs (uncompressed form, GS1 Digital Link URI Syntax 1.x).

``https://id.gs1.org/01/09506000134352/10/ABC123/21/X1?17=260331`` carries a primary key (01)
in the path, its key qualifiers in their fixed order (for (01): (10) then (21)), and data
attributes such as (17) in the query. Any domain and path prefix may come before the key;
query parameters that are not AIs (``linkType``, ...) are ignored when parsing.

>>> parse_digital_link("https://example.com/dl/01/9506000134352/10/ABC%2F1?17=260331&linkType=x")
{'01': '09506000134352', '10': 'ABC/1', '17': '260331'}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, unquote, urlsplit

from protocols.gs1.ai import check_associations, spec_for, validate_ai_value
from protocols.gs1.errors import AiCombinationError, ElementStringSyntaxError

# Primary keys and, for each, its path qualifiers in the only order allowed. (22) CPV and
# (254) GLN extension are not supported, so they are not listed.
_KEY_QUALIFIERS: dict[str, tuple[str, ...]] = {"01": ("10", "21"), "00": (), "414": ()}
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
DEFAULT_BASE = "https://id.gs1.org"


def _segment(text: str) -> str:
    if _BAD_ESCAPE.search(text):
        raise ElementStringSyntaxError(f"malformed %-escape in {text!r}")
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError as err:
        raise ElementStringSyntaxError(f"%-escapes in {text!r} are not UTF-8") from err


def _path_values(segments: list[str]) -> dict[str, str]:
    # Read from the right: the last primary key whose following segments are its qualifiers in
    # order wins, so a path prefix such as /00/xyz before the real key is left alone.
    for start in range(len(segments) - 2, -1, -2):
        key = segments[start]
        if key not in _KEY_QUALIFIERS:
            continue
        pairs = [(segments[i], segments[i + 1]) for i in range(start, len(segments), 2)]
        allowed = _KEY_QUALIFIERS[key]
        qualifiers = [ai for ai, _ in pairs[1:]]
        if (
            all(ai in allowed for ai in qualifiers)
            and qualifiers == sorted(qualifiers, key=allowed.index)
            and len(set(qualifiers)) == len(qualifiers)
        ):
            return {ai: _segment(value) for ai, value in pairs}
    raise ElementStringSyntaxError("no primary key (00, 01 or 414) in the path")


def parse_digital_link(uri: str) -> dict[str, str]:
    """Parse a GS1 Digital Link URI into AI → value (key, qualifiers, then query attributes).

    A GTIN-8/12/13 in the path is zero-padded to 14 digits. Values are checked as in element
    strings, including check digits, dates and companion rules.

    >>> parse_digital_link("https://id.gs1.org/00/106141412345678908")
    {'00': '106141412345678908'}
    >>> parse_digital_link("https://id.gs1.org/10/ABC")
    Traceback (most recent call last):
    ...
    protocols.gs1.errors.ElementStringSyntaxError: no primary key (00, 01 or 414) in the path
    """
    if not isinstance(uri, str):
        raise ElementStringSyntaxError(f"Digital Link must be text, got {type(uri).__name__}")
    try:
        parts = urlsplit(uri.strip())
    except ValueError as err:
        raise ElementStringSyntaxError(f"not a URI: {uri!r}") from err
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ElementStringSyntaxError(f"Digital Link must be an http(s) URI: {uri!r}")
    segments = [segment for segment in parts.path.split("/") if segment]
    values = _path_values(segments)
    if "01" in values and len(values["01"]) in (8, 12, 13):
        values["01"] = values["01"].zfill(14)
    # Split the query by hand: parse_qsl would turn '+', a valid GS1 character, into a space.
    for parameter in filter(None, parts.query.split("&")):
        name, _, raw = parameter.partition("=")
        if not (name.isascii() and name.isdigit()):
            continue  # linkType, context, ...: not data about the item
        spec_for(name)
        value = _segment(raw)
        if name in values and values[name] != value:
            raise AiCombinationError(f"AI ({name}) appears twice with different values")
        values[name] = value
    for ai, value in values.items():
        validate_ai_value(ai, value)
    check_associations(values)
    return values


def format_digital_link(values: Mapping[str, str], *, base: str = DEFAULT_BASE) -> str:
    """Format AI → value as a Digital Link URI under ``base`` (default ``https://id.gs1.org``).

    Exactly one primary key — (01), (00) or (414) — goes first in the path, then its
    qualifiers in the standard order; every other AI goes into the query, in the given order.

    >>> format_digital_link({"01": "09506000134352", "17": "260331", "21": "X/1", "10": "L1"})
    'https://id.gs1.org/01/09506000134352/10/L1/21/X%2F1?17=260331'
    """
    for ai, value in values.items():
        validate_ai_value(ai, value)
    check_associations(values)
    keys = [ai for ai in values if ai in _KEY_QUALIFIERS]
    if len(keys) != 1:
        raise AiCombinationError(
            f"a Digital Link needs exactly one of (01), (00), (414); got {keys}"
        )
    key = keys[0]
    path_ais = [key, *(ai for ai in _KEY_QUALIFIERS[key] if ai in values)]
    path = "".join(f"/{ai}/{quote(values[ai], safe='')}" for ai in path_ais)
    query = "&".join(
        f"{ai}={quote(value, safe='')}" for ai, value in values.items() if ai not in path_ais
    )
    return base.rstrip("/") + path + (f"?{query}" if query else "")
