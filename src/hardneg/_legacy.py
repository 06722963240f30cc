"""Old module paths (hardneg <= 0.1 had 32 flat modules) keep importing for one release, with a
``DeprecationWarning`` naming the new home. ``import hardneg.teachers`` gives a module whose
attributes are looked up in the new modules, in order; nothing is copied.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
import warnings

#: old module -> the new modules its names now live in (first match wins)
MOVED = {
    "hardneg.errors": ["hardneg.core.errors"],
    "hardneg.io": ["hardneg.core.files", "hardneg.core.provenance"],
    "hardneg.cache": ["hardneg.encode.cache", "hardneg.core.paths", "hardneg.core.fingerprint"],
    "hardneg.candidates": ["hardneg.mining.candidates"],
    "hardneg.formats": ["hardneg.data.tables"],
    "hardneg.download": ["hardneg.data.download"],
    "hardneg.export": ["hardneg.data.export", "hardneg.data.negatives"],
    "hardneg.mining.output": ["hardneg.data.negatives"],
    "hardneg.mining.core": ["hardneg.mining.mine", "hardneg.data.negatives"],
    "hardneg.torch_encoders": ["hardneg.encode.torch_backend"],
    "hardneg.onnx_backend": ["hardneg.encode.onnx_backend"],
    "hardneg.pooling": ["hardneg.training.prompts"],
    "hardneg.pools": ["hardneg.mining.teachers.pool_cache"],
    "hardneg.teachers": ["hardneg.mining.teachers", "hardneg.core.fingerprint"],
    "hardneg.ann": ["hardneg.search.ann", "hardneg.search.rank"],
    "hardneg.shards": ["hardneg.scale.shards", "hardneg.search.blocks"],
    "hardneg.engine": ["hardneg.scale.engine", "hardneg.encode.base"],
    "hardneg.ray_engine": ["hardneg.scale.ray_engine"],
    "hardneg.metrics": ["hardneg.evaluation.metrics"],
    "hardneg.evaluate": ["hardneg.evaluation.run"],
    "hardneg.stats": ["hardneg.analysis.significance", "hardneg.analysis.negatives"],
    "hardneg.inspect": ["hardneg.analysis.negatives", "hardneg.report.plots"],
    "hardneg.ablate": ["hardneg.experiment.grid"],
    "hardneg.ablate_config": ["hardneg.experiment.config"],
    "hardneg.ablate_stages": ["hardneg.experiment.stages"],
    "hardneg.train": ["hardneg.training.config", "hardneg.training.examples", "hardneg.training.trainer"],
    "hardneg.train_callbacks": ["hardneg.training.callbacks"],
    "hardneg.losses": ["hardneg.training.losses"],
    "hardneg.decoder": ["hardneg.training.decoder"],
    "hardneg.recipes": ["hardneg.training.recipes"],
    "hardneg.commands": ["hardneg.cli"],
    **{f"hardneg.commands.{c}": [f"hardneg.cli.{c}"]
       for c in ("ablate", "data", "evaluate", "export", "inspect", "mine", "train")},
}
#: names renamed in the move
RENAMED = {"search_shards": "search_blocks", "plot_report": "plot_negatives", "_CachedTeacher": "CachedTeacher",
           "_h": "short_hash"}
#: old modules that share their name with a public verb (``hn.train``, ``hn.evaluate``): importing
#: them must not break the verb, so these modules are callable and call it
CALLS = {"hardneg.train": ("hardneg.training.trainer", "train"),
         "hardneg.evaluate": ("hardneg.evaluation.run", "evaluate")}


class _Moved(types.ModuleType):
    def __getattr__(self, name: str):
        for target in MOVED[self.__name__]:
            mod = importlib.import_module(target)
            if hasattr(mod, RENAMED.get(name, name)):
                return getattr(mod, RENAMED.get(name, name))
        raise AttributeError(f"{self.__name__} (moved to {', '.join(MOVED[self.__name__])}) has no {name!r}")

    def __call__(self, *args, **kwargs):
        mod, fn = CALLS[self.__name__]
        return getattr(importlib.import_module(mod), fn)(*args, **kwargs)


class _Loader:  # the importlib Loader protocol (not the ABC: importlib.abc costs 20 ms at import)
    def create_module(self, spec):
        return _Moved(spec.name)

    def exec_module(self, module) -> None:
        module.__path__ = []  # lets hardneg.commands.<name> resolve below it
        warnings.warn(f"{module.__name__} is deprecated: import from {' / '.join(MOVED[module.__name__])}",
                      DeprecationWarning, stacklevel=3)


class _Finder:  # the MetaPathFinder protocol
    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.machinery.ModuleSpec(fullname, _Loader(), is_package=True)
        return None


def install() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
