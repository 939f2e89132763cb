"""GS1 identifiers for coldtrace: check digits, EPC Tag Data Standard, element strings.

Modules:

- ``check_digit``: the GS1 mod-10 check digit and key validation.
- ``epc``: EPC binary (hex) and URI codec for SGTIN-96/198, SSCC-96, SGLN-96, GRAI-96.
- ``element_string``: GS1 element strings (``(01)…(17)…(10)…``, FNC1 barcode data) and
  GS1 Digital Link URIs.
- ``errors``: the exception tree shared by all of them (every error is a ``ValueError``).

Pure and I/O-free: standard library only.
"""
