"""Request limits: no request, however hostile, can exhaust the service.

One ASGI middleware (``cloud.limits.middleware``) sits in front of every route, before routing,
authentication and parsing. It refuses a body above its route's size limit (Content-Length
first, then by counting bytes as they stream), ends a body that arrives too slowly, keeps the
bytes of all bodies in flight under one budget, and refuses JSON that holds NaN or Infinity.
Read endpoints bound their own output (bucket counts, ranges, ``at`` near now) through
``cloud.limits.bounds``.

Exceptions (each is an HTTP answer; they subclass Starlette's ``HTTPException`` so that FastAPI's
body reading passes them through instead of turning them into a 400)::

    LimitError                   any refusal by a limit
    ├── BadContentLengthError    400  a Content-Length that is not a number
    ├── BodyTooLargeError        413  above the route's body limit
    ├── BodyTimeoutError         408  the body did not arrive in time
    ├── BudgetExhaustedError     503  too many bytes in flight; Retry-After says when to retry
    └── NonFiniteJsonError       422  NaN or Infinity in a JSON body
"""

from __future__ import annotations

from starlette.exceptions import HTTPException


class LimitError(HTTPException):
    """A request refused by a limit; ``status_code`` is the answer."""

    status = 400

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=self.status, detail=message, headers=headers)
        self.message = message


class BadContentLengthError(LimitError):
    status = 400


class BodyTooLargeError(LimitError):
    status = 413


class BodyTimeoutError(LimitError):
    status = 408


class BudgetExhaustedError(LimitError):
    status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class NonFiniteJsonError(LimitError):
    status = 422
