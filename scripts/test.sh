#!/usr/bin/env bash
# The test command (README): lint (ruff), types (mypy on src/assay), the whole suite with
# the slow end-to-end tests, the doctested examples of the public API, then tests/synth again
# in its own environment with the synth extra and anonymeter (scripts/test-synth.sh).
# Arguments go to the suite's pytest; with arguments (a selection) the second environment is
# left out, and the last line says so.
# pytest exits 5 when nothing was collected; that must fail, so it is not masked.
set -euo pipefail
cd "$(dirname "$0")/.."
export ASSAY_DATA_HOME="${ASSAY_DATA_HOME:-$(cd .. && pwd)/shared/datasets}"
ruff check src tests benchmarks conftest.py
mypy src/assay
python -m pytest -n 2 -q "$@"
python -m pytest -q -p no:xdist --doctest-modules src/assay
if [ "$#" -eq 0 ]; then
    bash scripts/test-synth.sh
else
    echo "scripts/test.sh: a selection was given; tests/synth's second environment" \
         "(scripts/test-synth.sh) was not run."
fi
