"""The retention loop: creates the coming days' event partitions, drops expired ones and
forgets expired dedupe keys, at start-up and then every `interval` seconds."""

from __future__ import annotations

import asyncpg
import structlog

from nudgelib.clock import Clock
from nudgelib.loops import Backoff, Loop
from services.ingestion import partitions, store
from services.ingestion.settings import IngestionSettings

log = structlog.get_logger(__name__)


class Maintenance:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, settings: IngestionSettings) -> None:
        self._pool = pool
        self._clock = clock
        self._settings = settings

    async def run_once(self, starting: bool = False) -> partitions.Plan | None:
        """One pass. At start-up (`starting`) it waits for a replica doing the same, so
        today's partition surely exists before the service reports SERVING, and leaves the
        sweep of expired dedupe keys, which may be long, to the background pass."""
        s = self._settings
        done = await store.maintain(self._pool, self._clock.now(), s.partitions_ahead_days,
                                    s.event_retention_days, s.dedupe_retention_days,
                                    wait=starting, sweep=not starting)
        if done is not None and (done.create or done.drop):
            log.info("partitions_maintained", created=[str(d) for d in done.create],
                     dropped=[str(d) for d in done.drop])
        if done is not None and done.kept:
            log.warning("partitions_kept_unread", days=[str(d) for d in done.kept],
                        reason="a consumer has not taken all their items yet")
        return done

    async def run(self) -> None:
        async def step() -> None:
            await self.run_once()

        # Partitions are made days ahead: a failed pass waits for the next one.
        interval = self._settings.maintenance_interval
        await Loop("maintenance", step, poll=interval, backoff=Backoff.steady(interval)).run()
