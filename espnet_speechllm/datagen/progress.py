"""Long data steps: their worker pool (``run_pool``), their tally of failed items (``Failures``) and their
progress: a tqdm bar on a terminal; in a log file (stderr not a TTY), a logged line every 10 % (at most one
per 5 s), with rate and time left."""
import collections
import logging
import multiprocessing
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")
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


def run_pool(fn: Callable[[T], R], jobs: Sequence[T], nj: int, desc: str, log: logging.Logger = logger,
             threads: bool = False, initializer: Optional[Callable] = None, initargs: Tuple = (),
             chunksize: int = 1) -> Iterator[R]:
    """Yields ``fn(job)`` for each job, in job order, computed by ``nj`` worker processes (forked; threads with
    ``threads=True``, for work that runs in subprocesses), with progress. ``initializer(*initargs)`` runs in
    each worker first. An exception of ``fn`` is raised here; the jobs not started yet are cancelled."""
    pool: Executor
    if threads:
        pool = ThreadPoolExecutor(max(1, nj), initializer=initializer, initargs=initargs)
    else:
        pool = ProcessPoolExecutor(max(1, nj), mp_context=multiprocessing.get_context("fork"),
                                   initializer=initializer, initargs=initargs)
    try:
        yield from progress(pool.map(fn, jobs, chunksize=chunksize), total=len(jobs), desc=desc, log=log)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class Failures:
    """Items that failed, counted per reason, with the first example of each."""

    def __init__(self):
        self.counts: Dict[str, int] = collections.Counter()
        self.examples: Dict[str, str] = {}

    def add(self, reason: str, example: str) -> None:
        self.counts[reason] += 1
        self.examples.setdefault(reason, example)

    def summary(self, order: Optional[Sequence[str]] = None) -> List[Tuple[str, int, str]]:
        """(reason, count, example) per reason seen, in ``order`` (default: sorted)."""
        return [(r, self.counts[r], self.examples[r]) for r in (order or sorted(self.counts)) if self.counts[r]]

    def __len__(self) -> int:
        return sum(self.counts.values())
