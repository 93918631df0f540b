#!/usr/bin/env bash
# The test command (README): the whole suite, slow end-to-end tests included.
# pytest exits 5 when nothing was collected; that must fail, so it is not masked.
set -euo pipefail
cd "$(dirname "$0")/.."
export ASSAY_DATA_HOME="${ASSAY_DATA_HOME:-$(cd .. && pwd)/shared/datasets}"
python -m pytest -n 2 -q "$@"
