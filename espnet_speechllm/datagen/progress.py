"""Progress for long data steps: a tqdm bar on a terminal; in a log file (stderr not a TTY), a
logged line every 10 % (at most one per 5 s), with rate and time left."""
import logging
import sys
import time
from typing import Iterable, Iterator, Optional, TypeVar

from tqdm import tqdm

T = TypeVar("T")
logger = logging.getLogger(__name__)


def progress(iterable: Iterable[T], total: Optional[int] = None, desc: str = "",
             log: logging.Logger = logger) -> Iterator[T]:
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if sys.stderr.isatty():
        yield from tqdm(iterable, total=total, desc=desc, unit="utt", dynamic_ncols=True)
        return
    start = last = time.time()
    next_frac = 0.1
    i = 0
    for i, item in enumerate(iterable, 1):
        yield item
        if total:
            now = time.time()
            if i == total or (i / total >= next_frac and now - last >= 5):
                rate = i / max(now - start, 1e-9)
                left = (total - i) / rate if rate > 0 else 0
                log.info("%s: %d/%d (%.0f%%) %.1f/s, %.0fs left", desc, i, total, 100 * i / total, rate, left)
                last = now
                while next_frac <= i / total:
                    next_frac += 0.1
    if not total:
        log.info("%s: %d done in %.0fs", desc, i, time.time() - start)
