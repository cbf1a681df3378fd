"""Old module names of the flat 0.2 layout, importable still: `import w2s_gguf.protocol` gives
`w2s_gguf.core.protocol` (the same module object) with a DeprecationWarning naming the new place."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "storage": "common.storage", "plugins": "common.plugins", "network": "common.network",
    "llama_logs": "common.llama_logs", "pypi": "common.pypi",
    "registry": "models.registry", "fetch": "models.fetch", "hub": "models.hub", "modelfile": "models.modelfile",
    "engine": "features.engine", "layers": "features.layers", "embeddings": "features.pipeline",
    "cache": "features.cache", "ray_extract": "features.cluster",
    "splits": "core.splits", "heads": "core.heads", "stacked": "core.stacked", "losses": "core.losses",
    "protocol": "core.protocol", "stats": "core.stats", "intervals": "core.intervals", "summaries": "core.summaries",
    "methods": "core.methods", "config": "experiment.config", "reproduce": "experiment.reproduce",
    "export": "experiment.export", "doctor": "tools.doctor", "bench": "tools.bench",
}
PREFIX = __package__ + "."


class _Loader(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self.spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        # Already executed under its new name; the import system has just set the old name's spec on it.
        module.__spec__ = self.spec


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(PREFIX):
            return None
        old = fullname[len(PREFIX):]
        new = next((MOVED[k] + old[len(k):] for k in sorted(MOVED, key=len, reverse=True)
                    if old == k or old.startswith(k + ".")), None)
        if new is None:
            return None
        warnings.warn(f"{fullname} moved to {PREFIX}{new}; import it from there", DeprecationWarning, stacklevel=2)
        return importlib.util.spec_from_loader(fullname, _Loader(PREFIX + new))


if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedFinder())  # before the path finder, which would run a moved submodule twice
