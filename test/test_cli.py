"""The one command-line convention (espnet_speechllm/utils/cli.py): one setup_logging and str2bool, --force as a
value in every tool, a UserError as one line while every other error keeps its traceback."""
import argparse
import ast
import logging
import os
import subprocess
import sys

import pytest

from espnet_speechllm.utils.cli import MissingInputError, UserError, run_main, str2bool

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "espnet_speechllm")
TOOLS_WITH_FORCE = ("add_noise", "dump_audio", "dump_encoder_feats", "finalize_model", "make_nonspeech",
                    "make_tiny_models", "synth_corpus")


def _functions_defined(name):
    found = []
    for root, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(root, f)
                tree = ast.parse(open(path, encoding="utf-8").read())
                found += [os.path.relpath(path, REPO) for n in ast.walk(tree)
                          if isinstance(n, ast.FunctionDef) and n.name == name]
    return found


@pytest.mark.parametrize("name", ["setup_logging", "str2bool", "run_main"])
def test_one_definition(name):
    assert _functions_defined(name) == ["espnet_speechllm/utils/cli.py"]


def test_str2bool():
    assert [str2bool(v) for v in ("true", "True", "1", "yes", "false", "0", "no")] == [True] * 4 + [False] * 3
    with pytest.raises(argparse.ArgumentTypeError, match="expected true or false"):
        str2bool("maybe")


@pytest.mark.parametrize("tool", TOOLS_WITH_FORCE)
def test_force_is_a_value_in_every_tool(tool):
    import importlib

    parser = importlib.import_module(f"espnet_speechllm.bin.{tool}").get_parser()
    force = next(a for a in parser._actions if a.dest == "force")
    assert force.option_strings == ["--force"] and force.type is str2bool and force.default is False
    assert force.nargs is None  # takes exactly one value: a bare --force is an error, not "true"


def test_user_error_is_one_line_other_errors_keep_the_traceback(caplog):
    def user_mistake(argv):
        raise UserError("conf/x.yaml: beam_size must be >= 1, got 0")

    with pytest.raises(SystemExit) as e:
        run_main(user_mistake)
    assert e.value.code == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["conf/x.yaml: beam_size must be >= 1, got 0"]
    assert errors[0].exc_info is None

    def bug(argv):
        raise ValueError("shape mismatch: (2, 3) vs (3, 2)")

    with pytest.raises(ValueError, match="shape mismatch"):  # not swallowed: the caller sees the traceback
        run_main(bug)
    # UserErrors stay what callers catch: a ValueError, a missing input also a FileNotFoundError
    assert issubclass(UserError, ValueError) and issubclass(MissingInputError, FileNotFoundError)


def test_cli_user_error_is_one_line(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "espnet_speechllm.bin.ablation_plan", "--tables", "a", "--out_dir", str(tmp_path)]
    p = subprocess.run(cmd + ["--spec", str(tmp_path / "nope.yaml")], capture_output=True, text=True, env=env)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert [line for line in p.stderr.splitlines() if "ERROR" in line][0].endswith(f"{tmp_path}/nope.yaml: no such file")
