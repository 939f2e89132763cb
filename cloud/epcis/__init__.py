"""GS1 EPCIS 2.0 JSON-LD export of the ledger's movements and of sensor reports.

``events`` is pure (movements and sensor summaries in, event dictionaries out); ``export``
reads the database. The export raises nothing of its own: bad query parameters are refused by
the API's validation.
"""
