#!/usr/bin/env bash
# The second test environment: tests/synth with the synth extra (copulas, smartnoise-synth) and
# anonymeter, the yardstick of the three risks. Both pin numpy < 1.27 and pandas < 3, so they
# cannot sit beside the main suite's environment; this one (.venv-synth, made once, reused)
# installs the project's `synth-test` extra. Here a skipped test fails: every check the main
# environment skips for want of these packages must run. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export ASSAY_DATA_HOME="${ASSAY_DATA_HOME:-$(cd .. && pwd)/shared/datasets}"
venv="${ASSAY_SYNTH_VENV:-.venv-synth}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e ".[synth-test]"
ASSAY_SKIP_FAILS=1 "$venv/bin/python" -m pytest -n 2 -q tests/synth "$@"
