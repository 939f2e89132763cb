"""The audit trail read back: filters by who, what, when and object; CSV (and PDF) export.

Writes go to ``audit_log`` through ``cloud.auth.service.audit`` (and a few rooms' own inserts);
this room only reads it, for the API (``/v1/audit``) and the dashboard's audit page.
"""
