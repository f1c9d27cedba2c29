"""Worker processes that do not outlive the process that started them.

Killed with SIGTERM or SIGKILL (a cron job's timeout, the OOM killer), a process with a
ProcessPoolExecutor cleans nothing up, and each of its workers waits forever on the task queue,
whose write end the workers themselves hold (forked) or the fork server keeps alive.
"""

from __future__ import annotations

import os
import select
import threading
import time


def exit_with(pid: int) -> None:
    """In a worker (a pool's initializer): exit as soon as process `pid` is gone."""

    def watch() -> None:
        try:
            handle = os.pidfd_open(pid)
        except OSError:  # no pidfd (an old kernel): ask every second
            while True:
                time.sleep(1)
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
        else:
            select.select([handle], [], [])  # readable once the process has exited
        os._exit(0)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()
