"""Extensions outside this repository: modules named in ``CONDENSE_PLUGINS`` (comma-separated) are imported
before any interface lists a registry, so what they register (a score, a selection policy, a distillation
family and its methods, a dataset format, a model) is offered by the API's schema, the CLI's options and the
worker alike. A plugin is a module that calls the registries' ``register`` functions when imported.
"""

from __future__ import annotations

import os
from importlib import import_module

PLUGINS_VARIABLE = "CONDENSE_PLUGINS"


def load_plugins() -> None:
    """Import the modules named in ``$CONDENSE_PLUGINS``; importing one again is a no-op."""
    for module in (name.strip() for name in os.environ.get(PLUGINS_VARIABLE, "").split(",")):
        if not module:
            continue
        try:
            import_module(module)
        except ImportError as exc:
            raise ImportError(f"{PLUGINS_VARIABLE}: cannot import plugin {module!r}: {exc}") from exc
