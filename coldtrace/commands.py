"""Registry of subcommands contributed by the parts; each adds its own parser and handler.

Add a function ``register(sub)`` in a module of this package and list it in ``REGISTRARS``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

from cloud.ledger_cli import register as _ledger  # noqa: E402
from coldtrace.demo import register as _demo  # noqa: E402
from edge.cli import register as _edge  # noqa: E402
from simulators.cli import register as _sim  # noqa: E402

REGISTRARS: list[Registrar] = [_edge, _ledger, _sim, _demo]
