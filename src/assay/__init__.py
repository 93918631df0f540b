"""assay: audit models trained on sensitive tabular data and calibrate the fix.

Privacy (how much the model leaks about the people it was trained on), fairness (whom it
treats worse) and arbitrariness (would an equally good model have decided differently),
from one run, with honest uncertainty.
"""

from assay._validation import (
    AssayError,
    DataError,
    InvalidParameterError,
    UnachievableTargetError,
)

__version__ = "0.1.0"

__all__ = [
    "AssayError",
    "DataError",
    "InvalidParameterError",
    "UnachievableTargetError",
    "__version__",
]
