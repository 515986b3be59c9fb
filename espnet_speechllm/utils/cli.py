"""The one command-line convention of the ``python -m espnet_speechllm.bin.X`` tools.

- ``make_parser(__doc__)``: ``--help`` shows the tool's module docstring as written.
- Booleans are values, ``--name true|false`` (``str2bool``), as in ESPnet; ``add_force`` adds the ``--force``
  every tool spells the same way.
- ``setup_logging``: ESPnet-style lines on stderr.
- ``UserError``: a mistake the user can fix (an option, a config, an input file). ``run_main`` shows it as one
  log line and exits with status 1; every other exception keeps its traceback (an out-of-memory error or a
  shape bug is a bug report, not a message).
"""
import argparse
import logging
import sys
from typing import Callable, List, Optional

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


class UserError(ValueError):
    """A mistake the user can fix, with a message that names the value and the fix. A ``ValueError``."""


class MissingInputError(UserError, FileNotFoundError):
    """An input file or dir the user named does not exist. A ``FileNotFoundError`` too."""


def make_parser(doc: str) -> argparse.ArgumentParser:
    """An ArgumentParser whose ``--help`` shows the tool's module docstring as written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def str2bool(value: str) -> bool:
    v = str(value).lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_force(parser: argparse.ArgumentParser, help: str) -> None:
    """``--force true|false`` (default false)."""
    parser.add_argument("--force", type=str2bool, default=False, metavar="true|false", help=help)


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt=DATE_FORMAT, stream=sys.stderr)


def run_main(main: Callable[[Optional[List[str]]], None], argv: Optional[List[str]] = None) -> None:
    """Calls main(argv); a ``UserError`` is logged as one line and exits with status 1."""
    try:
        main(argv)
    except UserError as e:
        log = logging.getLogger(main.__module__)
        log.debug("traceback", exc_info=True)
        log.error("%s", e)
        sys.exit(1)
