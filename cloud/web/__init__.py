"""The built-in live dashboard: server-rendered pages, an event stream, our own JS and CSS.

``router.build_router`` mounts under ``/ui``: the overview (storage units with their current
temperature, status colour and 24 h sparkline; open excursions and early warnings with
acknowledge; quarantined lots with QA release/reject; today's receiving; key figures), a page
per lot (exposure chart, MKT, budget), a sign-in page, and ``/ui/events``, a server-sent event
stream that pushes re-rendered sections whenever the data behind them changes. Queries live in
``queries`` and ``kpis``; ``pages`` and ``lot_page`` render; ``svg`` draws the charts. No
third-party JavaScript or CSS: ``static/app.js`` and ``static/app.css`` are ours.

Errors: nothing here raises its own exceptions. Refusals from the parts it calls are answered
as HTTP errors at the router (a ledger refusal as the ledger API answers it, 404 for an unknown
lot or alert, 401/403 for sessions and roles).
"""
