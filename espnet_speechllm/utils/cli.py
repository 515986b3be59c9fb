"""What every ``python -m espnet_speechllm.bin.X`` tool shares: its parser header and ESPnet-style logging."""
import argparse
import logging

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


def make_parser(doc: str) -> argparse.ArgumentParser:
    """An ArgumentParser whose ``--help`` shows the tool's module docstring as written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT)
