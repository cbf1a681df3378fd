"""One registry mechanism for tasks and methods: a class per module of a package, found by importing it.

Adding a task or a method is adding one module; `discover` imports every
module of the package whose name does not start with "_", and each module's
`@register` decorator puts its class here under the class's `name`.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys


class Registry(dict):
    """name -> class, filled by the `register` decorator of the package's modules."""

    def __init__(self, kind: str, package: str):
        super().__init__()
        self.kind, self.package = kind, package

    def register(self, cls: type) -> type:
        if cls.name in self:
            raise RuntimeError(f"{self.kind} {cls.name!r} registered twice")
        self[cls.name] = cls
        return cls

    def discover(self) -> "Registry":
        # The package's __path__ is read now, not at start: a folder added to it is searched too.
        for info in pkgutil.iter_modules(sys.modules[self.package].__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")
        return self
