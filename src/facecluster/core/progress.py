"""Logging and progress reports for long stages.

Stages log through the ``facecluster`` logger; the command line points it at
the rule's log file.  ``Progress`` reports how far a blocked loop has come at
most every few seconds, so a log shows a stage is alive without flooding; when
stderr is a terminal it draws a tqdm bar there instead, and its lines go to the
log file only (never both on one screen).
"""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("facecluster")


def setup_logging(logfile: str | None = None, level: int = logging.INFO) -> None:
    """Send the ``facecluster`` logger to ``logfile`` (appending) and to stderr."""
    log.setLevel(level)
    for handler in list(log.handlers):
        log.removeHandler(handler)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    screen = logging.StreamHandler(sys.stderr)
    if sys.stderr.isatty():  # the bar shows progress there: its lines go to the file only
        screen.addFilter(lambda record: not getattr(record, "progress", False))
    handlers: list[logging.Handler] = [screen]
    if logfile:
        handlers.append(logging.FileHandler(logfile, mode="a"))
    for handler in handlers:
        handler.setFormatter(fmt)
        log.addHandler(handler)
    log.propagate = False


class Progress:
    """Report ``done/total`` of a task every ``every`` seconds and once at the end, as log
    lines (marked ``progress``), and as a tqdm bar when stderr is a terminal."""

    def __init__(self, total: int, what: str, every: float = 5.0):
        self.total = max(int(total), 0)
        self.what = what
        self.every = every
        self.done = 0
        self.start = time.perf_counter()
        self._last = self.start
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=what, file=sys.stderr, leave=False,
                            dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            if self.done >= self.total:
                self.bar.close()
        now = time.perf_counter()
        if now - self._last >= self.every or self.done >= self.total:
            self._last = now
            elapsed = now - self.start
            pct = 100.0 * self.done / self.total if self.total else 100.0
            eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
            log.info("%s: %d/%d (%.0f%%) in %.1f s, ~%.0f s left",
                     self.what, self.done, self.total, pct, elapsed, eta,
                     extra={"progress": True})
