"""Shared bits of the data-side command-line tools: boolean flags, logging, clean error exits."""
import argparse
import logging
import sys
from typing import Callable, List, Optional

from espnet_speechllm.data.audio_io import AudioReadError
from espnet_speechllm.datagen.datadir import OutputsExistError

# Errors that are the user's input, reported as one line without a traceback.
USER_ERRORS = (OutputsExistError, FileNotFoundError, ValueError, AudioReadError, RuntimeError)


def str2bool(value: str) -> bool:
    v = str(value).lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s",
                        datefmt="%Y-%m-%dT%H:%M:%S", stream=sys.stderr)


def run_main(main: Callable[[Optional[List[str]]], None], argv: Optional[List[str]] = None) -> None:
    """Calls main(argv); a user error is logged as one line and exits with status 1."""
    try:
        main(argv)
    except USER_ERRORS as e:
        log = logging.getLogger(main.__module__)
        log.debug("traceback", exc_info=True)
        log.error("%s", e)
        sys.exit(1)
