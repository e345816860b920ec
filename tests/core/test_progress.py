"""Progress: log lines in the rule's log file; a tqdm bar instead of them on a terminal."""

import io
import logging

from facecluster.core import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(monkeypatch, tmp_path, stream):
    monkeypatch.setattr(progress.sys, "stderr", stream)
    logfile = tmp_path / "stage.log"
    progress.setup_logging(str(logfile))
    try:
        p = progress.Progress(4, "steps", every=0.0)
        for _ in range(4):
            p.update()
        progress.log.info("done")
    finally:
        progress.setup_logging(None, logging.INFO)
    return logfile.read_text(), stream.getvalue()


def test_a_terminal_gets_a_bar_and_the_log_file_gets_the_lines(monkeypatch, tmp_path):
    logged, screen = run(monkeypatch, tmp_path, Terminal())
    assert logged.count("steps: ") == 4 and "steps: 4/4 (100%)" in logged
    assert "/4 [" in screen and "steps: 1/4 (25%)" not in screen, "a bar, not the lines"
    assert "done" in screen, "other messages still reach the terminal"


def test_without_a_terminal_the_lines_go_to_both(monkeypatch, tmp_path):
    logged, screen = run(monkeypatch, tmp_path, io.StringIO())
    assert screen.count("steps: ") == 4 and logged.count("steps: ") == 4
    assert "|" not in screen, "no bar"
