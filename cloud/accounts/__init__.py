"""Accounts: dashboard sessions (server-side, revocable, idle and absolute timeouts).

Users, roles and API tokens live in ``cloud.auth``; this room holds what a person signed in to
the dashboard has: a session whose random id travels in the cookie instead of the long-lived
API token. Nothing here raises: an unknown, idle, expired or revoked session reads as "not
signed in", and the dashboard sends the person to its sign-in page.
"""
