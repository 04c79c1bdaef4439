#!/usr/bin/env python3
"""Processes that die with the process that started them (Linux ``PR_SET_PDEATHSIG``).

    python deploy/federation/die_with_parent.py <parent pid> -- <command> [args...]

asks the kernel to send SIGTERM to this process when its parent exits, checks
that the parent is still ``<parent pid>`` (had it died before the request, the
signal would never come), then ``exec``s the command, which keeps the request
(the kernel clears it only for set-user-id programs).

Why a wrapper and not ``subprocess.Popen(preexec_fn=...)``: the demo starts its
nodes while rich's refresh thread and a thread pool run, and ``preexec_fn`` is
not safe in a process with threads; the wrapper is a fresh single-threaded
process. Why the kernel's signal and not a watchdog polling the parent pid: it
costs nothing while the parent lives, and it arrives even when the parent was
killed with SIGKILL and could run no cleanup.

The kernel sends the signal when the *thread* that forked the child exits, so
spawn these children from the main thread. On systems without ``prctl`` the
wrapper only ``exec``s: there the demo's own signal handling is the only guard.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

# From <linux/prctl.h>.
PR_SET_PDEATHSIG = 1
SCRIPT = Path(__file__).resolve()
# Exit status when the parent was already gone: the command must not run orphaned.
EXIT_PARENT_GONE = 3
EXIT_USAGE = 2


def set_parent_death_signal(sig: signal.Signals = signal.SIGTERM) -> bool:
    """Have the kernel send ``sig`` to this process when its parent exits; False where
    the kernel offers no such thing (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_PDEATHSIG): {os.strerror(error)}")
    return True


def main(argv: Sequence[str]) -> int:
    if len(argv) < 3 or argv[1] != "--" or not argv[0].isdigit():
        print(f"usage: {SCRIPT.name} <parent pid> -- <command> [args...]", file=sys.stderr)
        return EXIT_USAGE
    parent_pid, command = int(argv[0]), list(argv[2:])
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:
        return EXIT_PARENT_GONE
    os.execvp(command[0], command)
    return 0  # not reached: execvp replaces this process or raises


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
