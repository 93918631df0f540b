"""The CLI's own contract: help, version, one-line errors without tracebacks, fast start."""

import json
import subprocess
import sys

import pytest

import assay.cli as cli
from assay import InvalidParameterError, __version__
from assay.cli import main

# Modules that would make `assay --help` slow (seconds, not milliseconds) at start-up.
HEAVY = ["numpy", "pandas", "scipy", "sklearn", "torch", "dp_accounting", "matplotlib",
         "jinja2", "starlette", "uvicorn", "assay.engine", "assay.privacy.theory.accounting"]


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


def test_help_imports_no_heavy_module():
    """Registering every command, and printing the help, loads none of the heavy stacks."""
    probe = (
        "import io, json, sys, contextlib\n"
        "import assay.cli\n"
        "assay.cli._register()\n"
        f"registered = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "with contextlib.redirect_stdout(io.StringIO()) as help_text:\n"
        "    code = assay.cli.main(['--help'])\n"
        f"after_help = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps([code, registered, after_help, help_text.getvalue()]))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    code, registered, after_help, text = json.loads(out.stdout.strip().splitlines()[-1])
    assert registered == [], f"imported by a command module at start-up: {registered}"
    assert after_help == [], f"imported while printing --help: {after_help}"
    assert code == 0 and "risk" in text and "version" in text


@pytest.fixture()
def scratch_hooks(monkeypatch):
    """Hooks and commands added by a test are dropped afterwards (the app is shared)."""
    cli._register()
    monkeypatch.setattr(cli, "_BEFORE_RUN", list(cli._BEFORE_RUN))
    monkeypatch.setattr(cli.app, "registered_commands", list(cli.app.registered_commands))


def test_before_run_hooks_run_after_registration_and_before_parsing(scratch_hooks, capsys):
    seen = []

    @cli.before_run
    def add_command() -> None:
        # Registration is done (the version command exists) ...
        seen.append(any(c.name == "version" for c in cli.app.registered_commands))

        # ... and the app has not parsed argv yet: a command added now can be invoked.
        @cli.app.command("hooked-test-command")
        def hooked(flag: int = 0) -> None:
            print(f"hooked {flag}")

    @cli.before_run
    def second() -> None:
        seen.append("second")

    assert cli.before_run(second) is second  # registering again does not run it twice
    assert main(["hooked-test-command", "--flag", "3"]) == 0
    assert capsys.readouterr().out.strip() == "hooked 3"
    assert seen == [True, "second"]
    assert main(["version"]) == 0  # every call runs the hooks again
    assert seen == [True, "second", True, "second"]


def test_before_run_hook_errors_are_one_line(scratch_hooks, capsys):
    @cli.before_run
    def broken() -> None:
        raise InvalidParameterError("section must be registered. Got nothing.")

    assert main(["version"]) == 2
    out, err = capsys.readouterr()
    assert err.strip() == "error: section must be registered. Got nothing."
    assert out == ""
