"""Entry point ``broken-import``: imports a module that is not installed (a forgotten dependency)."""

import tlhub_broken_example_missing_dependency  # noqa: F401  (no package provides this module)

from tlhub.adapters.contract import Adapter


class MissingDependencyAdapter(Adapter):  # never reached
    name = "broken-import"
