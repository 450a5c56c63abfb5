"""Child processes started as a terminal starts them (importable from any test folder, like sharedpaths)."""

from __future__ import annotations

import signal


def as_from_a_terminal() -> None:
    """``preexec_fn`` for a child that a test interrupts: SIGINT unblocked and at its default disposition, whatever
    the test process carries by then (a library started earlier in the session may block or ignore it, and a child
    inherits both), so the child's Python turns Ctrl-C into KeyboardInterrupt as it does under a terminal."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)
