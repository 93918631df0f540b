"""The CLI's own contract: help, version, one-line errors without tracebacks."""

import subprocess
import sys

from assay import __version__
from assay.cli import main


def test_version(capsys):
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == __version__


def test_unknown_command_is_one_line_error(capsys):
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_module_entry_point_runs():
    out = subprocess.run(
        [sys.executable, "-m", "assay", "version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == __version__
