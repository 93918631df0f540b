"""assay: audit models trained on sensitive tabular data and calibrate the fix.

Privacy (how much the model leaks about the people it was trained on), fairness (whom it
treats worse) and arbitrariness (would an equally good model have decided differently),
from one run, with honest uncertainty.

The packages import their submodules on first use (PEP 562), so ``import assay`` and
the ``assay`` command start without loading numpy, pandas, torch or dp_accounting.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assay._validation import (
        AssayError,
        DataError,
        InvalidParameterError,
        UnachievableTargetError,
    )

__version__ = "0.1.0"


def _lazy_exports(
    package: str, exports: Mapping[str, Iterable[str]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` (PEP 562) of a package with lazy exports.

    Parameters
    ----------
    package : str
        The package's ``__name__``; it must be in ``sys.modules`` (call this from the
        package's own ``__init__``).
    exports : mapping of str to iterable of str
        Submodule (relative to `package`) -> the public names it defines.

    Returns
    -------
    all : list of str
        The public names, in the order given.
    getattr, dir : callables
        Bind them as the package's ``__getattr__`` and ``__dir__``. A public name
        imports its submodule on first access and is then cached in the package
        namespace. Any other name that is a submodule of `package` is imported on
        access, as eager imports made it available before
        (``import assay.privacy; assay.privacy.theory.risk``).
    """
    namespace = sys.modules[package].__dict__
    origin = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        submodule = origin.get(name)
        if submodule is not None:
            value = getattr(importlib.import_module(f"{package}.{submodule}"), name)
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}"):
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value  # later lookups find it without calling us again
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *origin})

    return list(origin), __getattr__, __dir__


_errors, __getattr__, __dir__ = _lazy_exports(
    __name__,
    {"_validation": ["AssayError", "DataError", "InvalidParameterError",
                     "UnachievableTargetError"]},
)
__all__ = [*_errors, "__version__"]
del _errors
