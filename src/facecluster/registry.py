"""Method name -> method: the one place the core asks which methods exist.

Every module or package under ``facecluster.methods`` that defines ``METHOD`` (a
``core.contract.Method``) is a method, found by its module name, so adding a method adds a
module and nothing else.  Methods outside the package (a user's own, a test's toy method)
are added by importing their module with :func:`load_modules` (the config's
``method_modules`` key and the command line's ``--method-module`` do it): a module that
defines ``METHOD`` is registered when loaded.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

from .core.contract import MODEL_FORMAT, ClusterModel, Method, Refiner
from .core.progress import log

_EXTERNAL: dict[str, Method] = {}


class UnknownMethodError(KeyError):
    """No method of that name; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])

# The method `facecluster cluster` and `facecluster.cluster` use when none is named: one
# that needs no labels, at its label-free default.  Infomap (τ 0.58): on the scoreboard's
# sets, mean of F_P and F_B 89.5 / 82.2 / 88.9 on three LFW dlib folds, 95.3 on LFW FaceNet,
# 71.9 on synthetic-small and 69.0 on ms1m-584k, where the thresholded kNN at τ 0.6 (the
# previous default, set on synthetic-small, where it gets 84.1) got 51.8 / 69.0 / 78.6, 80.3
# and 28.9.
DEFAULT_METHOD = "infomap"


def _builtin_names() -> list[str]:
    package = importlib.import_module(f"{__package__}.methods")
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__)
                  if not m.name.startswith("_"))


def names() -> list[str]:
    """Every method's name: the built-in ones and those loaded from other modules."""
    return sorted(set(_builtin_names()) | set(_EXTERNAL))


def get(name: str) -> Method:
    """The method called ``name``; KeyError listing the known ones otherwise."""
    if name in _EXTERNAL:
        return _EXTERNAL[name]
    if name in _builtin_names():
        method = getattr(importlib.import_module(f"{__package__}.methods.{name}"), "METHOD", None)
        if not isinstance(method, Method) or method.name != name:
            raise TypeError(f"facecluster.methods.{name} must define METHOD, a Method named "
                            f"{name!r}")
        return method
    raise UnknownMethodError(f"unknown method {name!r}; known: {', '.join(names())}")


def register(method: Method) -> Method:
    """Add a method from outside ``facecluster.methods``; its name must be new."""
    if not isinstance(method, Method):
        raise TypeError(f"register takes a Method, not {type(method).__name__}")
    if method.name in _builtin_names() or _EXTERNAL.get(method.name, method) is not method:
        raise ValueError(f"a method called {method.name!r} already exists")
    _EXTERNAL[method.name] = method
    return method


def load_modules(modules: list[str]) -> None:
    """Import each module and register the ``METHOD`` it defines."""
    for module_name in modules:
        module = importlib.import_module(module_name)
        method = getattr(module, "METHOD", None)
        if not isinstance(method, Method):
            raise ImportError(f"module {module_name} defines no METHOD (a "
                              f"facecluster.core.contract.Method)")
        if _EXTERNAL.get(method.name) is not method:
            register(method)


def load_model(path: str | Path) -> ClusterModel:
    """The model saved at ``path`` (a folder with ``model.json``), of whichever method."""
    path = Path(path)
    meta_path = path / "model.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{path}: not a model folder (no model.json)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: model format {meta.get('format')}, this version reads "
                         f"{MODEL_FORMAT}")
    method = get(meta["method"])
    model = method.model(knn=meta.get("knn"), **meta["params"])
    method.model._load_state(model, path, meta.get("state", {}))
    model.fitted = True
    model.dim = meta.get("dim")  # None in a folder written before it was recorded
    model.input_normalise = meta.get("input_normalise")
    refine = (model.input_normalise or {}).get("refine")
    if refine:  # new faces are refined as its training faces were (ClusterModel.refine)
        model.refiner = get_refiner(refine["method"])
    log.info("loaded a %s model from %s", method.name, path)
    return model


def refiner_names() -> list[str]:
    """Every feature refiner's name (modules under ``facecluster.refiners``)."""
    package = importlib.import_module(f"{__package__}.refiners")
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__)
                  if not m.name.startswith("_"))


def get_refiner(name: str) -> Refiner:
    """The feature refiner called ``name``; UnknownMethodError listing the known ones."""
    if name not in refiner_names():
        raise UnknownMethodError(f"unknown refiner {name!r}; known: {', '.join(refiner_names())}")
    refiner = getattr(importlib.import_module(f"{__package__}.refiners.{name}"), "REFINER", None)
    if not isinstance(refiner, Refiner) or refiner.name != name:
        raise TypeError(f"facecluster.refiners.{name} must define REFINER, a Refiner named "
                        f"{name!r}")
    return refiner

