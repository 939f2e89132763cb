"""HTML to PDF through WeasyPrint (Pango lays out the text; no browser needed).

WeasyPrint is imported here only, so the rest of the service starts without Pango installed
and only report printing fails, with a clear message.
"""

from __future__ import annotations

from cloud.reports import ReportError


def print_pdf(document: str) -> bytes:
    """The PDF of an HTML document that needs nothing from outside (styles and charts inline)."""
    try:
        from weasyprint import HTML
    except OSError as err:  # the shared libraries are missing
        raise ReportError(
            f"PDF printing needs Pango (scripts/install-system-deps.sh): {err}"
        ) from err
    # no base URL: a report never fetches anything (nothing in it comes from outside)
    pdf: bytes = HTML(string=document, url_fetcher=_refuse).write_pdf()
    return pdf


def _refuse(url: str, *args: object, **kwargs: object) -> dict[str, object]:
    raise ValueError(f"a report fetches nothing: {url[:80]!r}")
