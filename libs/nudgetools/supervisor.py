"""Keeps `nudge run`'s processes running (each replica of each service, and the edge): one
that exits is started again after a backoff, and the others (and PostgreSQL) go on serving
meanwhile.

Each service has a watcher. When its process exits, the watcher says so on one line, waits
`backoff.delay(n)` for its n-th exit in a row, starts it again and says when it is serving
again. An exit after `stable` seconds of running counts as the first in a row again; a
service that keeps exiting is restarted at most every `backoff.maximum` seconds, and the
line says it is crash-looping. Stopping the supervisor stops the watchers only; the caller
stops the processes.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from nudgelib.loops import Backoff
from nudgetools.cluster import Cluster

# Restarts after 0.5 s, 1 s, 2 s… at most every 30 s for a service that keeps exiting.
RESTART_BACKOFF = Backoff(initial=0.5, multiplier=2.0, maximum=30.0, jitter=0.2)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Supervisor:
    cluster: Cluster
    backoff: Backoff = RESTART_BACKOFF
    # Seconds a process must have run for its exit to count as the first in a row again.
    stable: float = 60.0
    # How often an exit is looked for.
    poll: float = 0.2
    # How long a restarted service has to report SERVING before it is looked at again.
    ready_timeout: float = 60.0
    say: Callable[[str], None] = _say
    # Restarts made, by service (for tests and the operator's curiosity).
    restarts: dict[str, int] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        for name in self.cluster.processes:
            self._tasks.append(asyncio.create_task(self._watch(name), name=f"supervise-{name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _watch(self, name: str) -> None:
        loop = asyncio.get_running_loop()
        in_a_row = 0
        while True:
            process = self.cluster.processes[name]
            started = loop.time()
            while (code := process.poll()) is None:
                await asyncio.sleep(self.poll)
            in_a_row = 1 if loop.time() - started >= self.stable else in_a_row + 1
            delay = self.backoff.delay(in_a_row)
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            # The nominal pause (no jitter) has reached the cap: a crash loop.
            if self.backoff.delay(in_a_row, rand=lambda: 0.5) >= self.backoff.maximum:
                self.say(f"nudge run: {name} {how}; it keeps exiting ({in_a_row} times in a row), "
                         f"restarting it at most every {self.backoff.maximum:g}s")
            else:
                self.say(f"nudge run: {name} {how}; restarting it in {delay:.2g}s")
            await asyncio.sleep(delay)
            self.cluster.start((name,))
            self.restarts[name] = self.restarts.get(name, 0) + 1
            try:
                await self.cluster.wait_ready(self.ready_timeout, names=(name,))
            except (RuntimeError, TimeoutError):
                continue  # it exited again (the next round says so), or is still starting
            self.say(f"nudge run: {name} is serving again")
