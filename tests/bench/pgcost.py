"""What PostgreSQL spends on one phase of a bench.

- CPU: user + system time of every process of the server (the postmaster and all its
  children), read from /proc before and after the phase. Backends come and go during a
  phase; the kernel adds a child's time to its parent's cutime/cstime when the parent reaps
  it, so the postmaster's own fields count the children that exited and the live children
  are read one by one.
- Execution time per statement from `pg_stat_statements`, where the server loads it (the
  bench's embedded server does, see `harness.database(preload=...)`). It is time spent
  executing (waits for locks and for the WAL flush at COMMIT included), not CPU, and leaves
  out what no statement does: background writers, autovacuum, connection start-up.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

STATEMENTS = "pg_stat_statements"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TOP = 8

# Fields of /proc/<pid>/stat after the command name, counted from 0 (field 3, the state):
# ppid is field 4; utime, stime, cutime, cstime are fields 14 to 17.
_PPID = 1
_TIMES = slice(11, 15)   # the process's own and its exited children's
_OWN_TIMES = slice(11, 13)


@dataclass(frozen=True)
class Statement:
    query: str
    calls: int
    rows: int
    total_ms: float


@dataclass(frozen=True)
class PhaseCost:
    cpu_seconds: float | None        # None: the server is not a process on this machine
    exec_ms: float | None            # None: pg_stat_statements is not loaded
    top: tuple[Statement, ...]
    # CPU seconds of each service process over the phase, so PostgreSQL's share is seen
    # next to what the services themselves spend.
    services: dict[str, float] = field(default_factory=dict)
    # The bench process's own CPU (its load generator) and the phase's wall time: with the
    # above, how busy the machine's cores were with the pipeline.
    client_cpu_seconds: float = 0.0
    wall_seconds: float = 0.0

    def pipeline_cpu_seconds(self) -> float | None:
        """PostgreSQL, the services and the client together; None if the server's is unknown."""
        if self.cpu_seconds is None:
            return None
        return self.cpu_seconds + sum(self.services.values()) + self.client_cpu_seconds

    def cpu_us_per(self, events: int) -> float | None:
        return None if self.cpu_seconds is None else self.cpu_seconds * 1e6 / events

    def exec_us_per(self, events: int) -> float | None:
        return None if self.exec_ms is None else self.exec_ms * 1e3 / events


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    return text[text.rindex(")") + 2:].split()


def _ticks(fields: list[str]) -> int:
    return sum(int(x) for x in fields[_TIMES])


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process so far; None once it is gone."""
    fields = _stat(pid)
    return None if fields is None else sum(int(x) for x in fields[_OWN_TIMES]) / CLOCK_TICKS


def server_cpu_seconds(postmaster: int) -> float:
    """CPU seconds of the postmaster, of its exited children (its cutime/cstime) and of its
    live children. The postmaster is read first: a backend exiting between that read and the
    scan below is missed (a short backend's few ms), never counted twice."""
    own = _stat(postmaster)
    if own is None:
        raise RuntimeError(f"PostgreSQL (pid {postmaster}) is gone")
    ticks = _ticks(own)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and int(fields[_PPID]) == postmaster:
            ticks += _ticks(fields)
    return ticks / CLOCK_TICKS


async def postmaster_pid(conn: asyncpg.Connection) -> int | None:
    """The postmaster of the connection's server, if it runs on this machine: the parent of
    the connection's backend. None for a server elsewhere (its pids mean nothing here)."""
    backend = await conn.fetchval("SELECT pg_backend_pid()")
    fields = _stat(backend)
    if fields is None or not _is_postgres(backend):
        return None
    parent = int(fields[_PPID])
    return parent if _is_postgres(parent) else None


def _is_postgres(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except OSError:
        return False


async def statements_loaded(conn: asyncpg.Connection) -> bool:
    """Whether the server loads pg_stat_statements; if so, its view is created in the
    connection's database (the statistics themselves cover the whole server)."""
    loaded = await conn.fetchval("SHOW shared_preload_libraries")
    if STATEMENTS not in (name.strip() for name in loaded.split(",")):
        return False
    await conn.execute(f"CREATE EXTENSION IF NOT EXISTS {STATEMENTS}")
    return True


class PhaseMeter:
    """Started before a phase, stopped after it: `cost = await (await PhaseMeter.start(conn)).stop(conn)`."""

    def __init__(self, postmaster: int | None, statements: bool, cpu_before: float | None,
                 services: dict[str, int], services_before: dict[str, float | None]) -> None:
        self._postmaster, self._statements, self._cpu_before = postmaster, statements, cpu_before
        self._services, self._services_before = services, services_before
        self._client_before, self._wall_before = time.process_time(), time.perf_counter()

    @classmethod
    async def start(cls, conn: asyncpg.Connection, services: dict[str, int] | None = None) -> "PhaseMeter":
        """`services`: name -> pid of each service process whose CPU is to be measured too."""
        postmaster = await postmaster_pid(conn)
        statements = await statements_loaded(conn)
        if statements:
            await conn.execute("SELECT pg_stat_statements_reset()")
        services = services or {}
        # CPU last, so that setting up the meter is not part of what it measures.
        return cls(postmaster, statements, server_cpu_seconds(postmaster) if postmaster else None,
                   services, {n: process_cpu_seconds(p) for n, p in services.items()})

    def _services_spent(self) -> dict[str, float]:
        spent = {}
        for name, pid in self._services.items():
            before, now = self._services_before[name], process_cpu_seconds(pid)
            if before is not None and now is not None:
                spent[name] = now - before
        return spent

    async def stop(self, conn: asyncpg.Connection) -> PhaseCost:
        # CPU first, so that reading the statements is not part of what is measured.
        cpu = None if self._postmaster is None else server_cpu_seconds(self._postmaster) - self._cpu_before
        services = self._services_spent()
        client, wall = time.process_time() - self._client_before, time.perf_counter() - self._wall_before
        if not self._statements:
            return PhaseCost(cpu, None, (), services, client, wall)
        total = await conn.fetchval(f"SELECT coalesce(sum(total_exec_time), 0) FROM {STATEMENTS}")
        rows = await conn.fetch(f"SELECT query, calls, rows, total_exec_time FROM {STATEMENTS} "
                                "ORDER BY total_exec_time DESC LIMIT $1", TOP)
        top = tuple(Statement(" ".join(r["query"].split()), r["calls"], r["rows"], r["total_exec_time"])
                    for r in rows)
        return PhaseCost(cpu, total, top, services, client, wall)


def print_cost(phase: str, cost: PhaseCost, events: int, unit: str = "event") -> None:
    """Per event (or per `unit`): CPU of the server's processes, execution time summed over
    statements, and the statements that took the most time."""
    cpu, exec_us = cost.cpu_us_per(events), cost.exec_us_per(events)
    print(f"\nPostgreSQL during {phase}, per {unit}: "
          + (f"CPU {cpu:.1f} µs ({cost.cpu_seconds:.1f} s of CPU of all its processes over {events} {unit}s)"
             if cpu is not None else "CPU not measured (the server is not a process on this machine)")
          + ("; statement execution (pg_stat_statements total_exec_time) "
             f"{exec_us:.1f} µs" if exec_us is not None else f"; {STATEMENTS} not loaded"))
    if cost.services:
        print(f"services' own CPU per {unit}: " + ", ".join(
            f"{name} {seconds * 1e6 / events:.1f} µs" for name, seconds in cost.services.items()))
    if (whole := cost.pipeline_cpu_seconds()) is not None and cost.services and cost.wall_seconds:
        # What bounds the rate on this machine: at this CPU per unit, its cores allow no more
        # however the work is scheduled among the processes.
        cores = os.cpu_count() or 1
        print(f"whole pipeline (PostgreSQL + services + this client {cost.client_cpu_seconds * 1e6 / events:.1f} µs): "
              f"{whole * 1e6 / events:.1f} µs of CPU per {unit}; {whole / cost.wall_seconds:.2f} of {cores} cores "
              f"busy over the phase; at that cost {cores} cores allow at most "
              f"{cores * events / whole:,.0f} {unit}s/s")
    if not cost.top:
        return
    print(f"top {len(cost.top)} statements by total execution time:")
    print(f"{'µs/' + unit:>9}{'ms':>10}{'calls':>9}{'rows':>10}  statement")
    for s in cost.top:
        text = s.query if len(s.query) <= 110 else s.query[:107] + "..."
        print(f"{s.total_ms * 1e3 / events:>9.1f}{s.total_ms:>10.0f}{s.calls:>9}{s.rows:>10}  {text}")
