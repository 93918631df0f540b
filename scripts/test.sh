#!/usr/bin/env bash
# The test command (README): lint (ruff), types (mypy on src/assay), the whole suite with
# the slow end-to-end tests, then the doctested examples of the public API. Arguments go to the suite's pytest.
# pytest exits 5 when nothing was collected; that must fail, so it is not masked.
set -euo pipefail
cd "$(dirname "$0")/.."
export ASSAY_DATA_HOME="${ASSAY_DATA_HOME:-$(cd .. && pwd)/shared/datasets}"
ruff check src tests benchmarks conftest.py
mypy src/assay
python -m pytest -n 2 -q "$@"
python -m pytest -q -p no:xdist --doctest-modules src/assay
