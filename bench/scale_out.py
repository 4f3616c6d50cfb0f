"""Scale-out benchmark: one fetch round of 20,000 feeds by 1, 2 and 3 instances sharing a
PostgreSQL store, and by 1 instance on SQLite.

What it measures, in one invocation (``python bench/scale_out.py``, defaults shown):

1. **Feeds** - ``--feeds 20000`` distinct RSS 2.0 feeds of ``--items 5`` entries each
   (``bench/fetch.py``'s generator: a news site's channel, items with a title, a
   tracking-tagged link, a GUID, a date, an author and an HTML teaser; about 5 KB a
   feed), every feed and every entry distinct, so each entry is inserted. They are
   spread over ``--hosts 2000`` loopback host names, 127.1.0.1 ... 127.1.7.250 (feed i
   on host i % N: 10 feeds per host; Linux routes all of 127/8 to lo), so that the
   per-host rule (one instance per host at a time, ``per_host`` connections per host)
   does not serialise the round. One ``tests/feedserver.py`` ``FeedServer`` bound to
   0.0.0.0 serves them all (it answers loopback clients only) from its **own process**
   (its threads never share an instance's GIL), from memory, with a latency drawn per
   response uniformly from ``--latency 0.05 0.15`` s (seeded). It logs every request, so
   the bench can check that every feed was fetched exactly once, from its own host.
2. **Stores** - for each configuration a fresh store: a new PostgreSQL schema (dropped
   afterwards) or a new SQLite file. Every feed is added (``FeedStore.sync_config``) and
   due before the timer starts.
3. **Instances** - N processes started at once, each running exactly the daemon's fetch
   job, ``newsdesk.jobs.fetch_round(config, store, instance=...)``, in a fresh
   interpreter (``--round``, a hidden mode of this script): feeds are claimed as the
   round goes (``FeedStore.claim_due``: a lease, ``FOR UPDATE SKIP LOCKED`` and an
   advisory lock on PostgreSQL), fetched, parsed in the instance's parser workers (one
   per core, the default) and stored. The config: ``[fetch] concurrency =
   --concurrency`` (150, the same for every run), ``per_host`` at its default (2),
   ``allow_private_networks = true``. **Clustering is left out**: ``fetch_round`` ends
   with ``cluster_stories``, which the driver replaces by a no-op, because clustering
   100,000 fresh entries takes minutes of one core and would hide the fetch round
   (``--cluster`` keeps it and times it apart). Configurations: 1 instance on SQLite,
   then ``--instances 1,2,3`` on PostgreSQL.
4. **Timed** - from just before the first instance is started until the last one has
   exited (interpreter start and imports included, about a second), feeds/s = feeds /
   that time. Each instance also reports its round (start and end, on the shared
   clock), its claims (each ``claim_due`` call, timed: lock waits included) and its
   ``Store.record_fetch`` calls (the per-feed transaction of entries and feed health),
   which run on the instance's one store thread.
5. **CPU** - of the instances with everything they started (parser workers and their
   forkserver: the bench is a child subreaper, so it reaps them and
   ``RUSAGE_CHILDREN`` holds all of it), split into the instances' main processes
   (their own ``getrusage``) and the rest (parser workers); of the PostgreSQL backends
   serving the instances (each instance records its connections' backend PIDs and reads
   their CPU from /proc before it disconnects); of the feed server process; and of the
   whole machine (``/proc/stat``), so that what others ran meanwhile shows.
6. **Ceilings** - latency-bound: instances x concurrency / mean latency (0.1 s) feeds/s;
   CPU-bound: cores / (CPU-s per feed of the instances, their PostgreSQL backends and the
   feed server), since all share this machine's cores.
7. **Claims alone** - once, after the last run, on that run's stores: every feed made
   due again, then ``claim_due`` called back to back by as many simulated instances as
   the largest configuration, in turn, ``2 x concurrency`` feeds a call (as a round
   claims), each instance's previous batch marked checked before its next claim (an
   UPDATE, not timed). The median claim time gives the most feeds/s claims can hand
   out, as they are made one at a time across instances. Then (``--claim-growth
   20000,100000,200000``) the first 20 claims on fresh PostgreSQL feed tables of those
   sizes (feeds inserted with one SQL statement, all due), the locking SELECT timed
   apart: how the claim's cost grows with the number of due feeds.

Checks, per configuration and run: every instance exits 0 with an empty stderr; the
server saw every feed's path exactly once, none unknown, each on its own host; the
instances' summaries add up to every feed ok and none failed; the store holds feeds x
items entries, every feed has a success and no lease is left.

Each configuration is repeated ``--runs 3`` times (a fresh store each time, the order
of configurations rotated from run to run) and MEDIANS are reported. Before each timed
round the bench waits (``--quiet-wait 20`` s at most) for other processes to go quiet.

Output: a table, the checks, a JSON file (``--out``, default bench/out/scale_out.json)
and the "Scale-out" section of docs/benchmarks.md (``--no-doc`` to skip); ``--report
JSON`` prints (and writes) them again from a saved result. ``--quick`` is a smoke run:
1,000 feeds, 1 run, no waiting, no doc. ``--switch-interval S`` sets
``sys.setswitchinterval`` in every instance (an experiment on the store thread's waits
for the GIL). A default run takes about an hour on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import benchdoc
import fetch as fetchbench

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out" / "scale_out.json"
SECTION = "Scale-out"
PG_SERVER = os.environ.get("NEWSDESK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PR_SET_CHILD_SUBREAPER = 36
DEFAULTS = {
    "feeds": 20000,
    "runs": 3,
    "quiet_wait": 20.0,
    "claim_growth": [20000, 100000, 200000],
}
QUICK = {"feeds": 1000, "runs": 1, "quiet_wait": 0.0, "claim_growth": [2000]}
GROWTH_CLAIMS = 20
"""Claims timed at each size of ``--claim-growth``."""


# -- feeds and hosts ---------------------------------------------------------------------


def host_address(n: int) -> str:
    """Loopback address of bench host ``n`` (0-based): 127.1.0.1 ... 127.1.0.250, 127.1.1.1 ..."""
    return f"127.1.{n // 250}.{n % 250 + 1}"


def feed_path(index: int) -> str:
    return f"/feeds/{index:05d}.rss"


def feed_url(index: int, hosts: int, port: int) -> str:
    return f"http://{host_address(index % hosts)}:{port}{feed_path(index)}"


def serve(args: argparse.Namespace) -> None:
    """Child process: serve the feeds on 0.0.0.0; answers "reset"/"stats"/"quit" on stdin."""
    sys.path.insert(0, str(REPO / "tests"))
    from feedserver import FeedServer, Reply, Request  # type: ignore[import-not-found]

    bodies = {
        feed_path(i): fetchbench.render_feed(i, args.items, args.seed) for i in range(args.feeds)
    }
    headers = {"Content-Type": "application/rss+xml"}

    def reply(request: Request) -> Any:
        # Bound to every address for the 127/8 host names; only loopback clients are served.
        if not request.client[0].startswith("127."):
            return Reply(status=403)
        return Reply(headers=headers, body=bodies[urlsplit(request.path).path])

    server = FeedServer("0.0.0.0", 0, latency=tuple(args.latency), seed=args.seed)
    for path in bodies:
        server.route(path, reply)
    with server:
        print(json.dumps({"port": server.port}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "reset":
                server.clear()
            elif command == "stats":
                print(json.dumps(served(server, bodies, args.hosts)), flush=True)
            elif command == "quit":
                break


def served(server: Any, bodies: dict[str, bytes], hosts: int) -> dict[str, Any]:
    """What the server did since the last reset, and whether every feed came once."""
    times = os.times()
    requests = server.requests
    paths = Counter(urlsplit(r.path).path for r in requests)
    wrong_host = 0
    for request in requests:
        path = urlsplit(request.path).path
        if path in bodies:
            index = int(path.rsplit("/", 1)[1].split(".")[0])
            if request.headers.get("host") != f"{host_address(index % hosts)}:{server.port}":
                wrong_host += 1
    return {
        "requests": len(requests),
        "connections": len({r.client for r in requests}),
        "missing": sum(1 for path in bodies if path not in paths),
        "twice": sum(1 for path, n in paths.items() if n > 1 and path in bodies),
        "unknown": sum(n for path, n in paths.items() if path not in bodies),
        "wrong_host": wrong_host,
        "peak_in_flight": server.gauge.peak,
        "cpu_s": times.user + times.system,
    }


class ServerProcess:
    """The feed server child and its stdin/stdout control protocol."""

    def __init__(self, args: argparse.Namespace) -> None:
        command = [sys.executable, __file__, "--serve", "--feeds", str(args.feeds)]
        command += ["--items", str(args.items), "--hosts", str(args.hosts)]
        command += ["--latency", *map(str, args.latency), "--seed", str(args.seed)]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self._port: int | None = None
        self._cpu_mark = 0.0

    @property
    def port(self) -> int:
        """The server's port; waits until it has generated its feeds and listens."""
        if self._port is None:
            self._port = int(json.loads(self._readline())["port"])
        return self._port

    def _readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("the feed server process died")
        return line

    def _ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self._readline()) if command == "stats" else {}

    def reset(self) -> None:
        """Start a round: forget the request log; CPU is counted from here."""
        self._ask("reset")
        self._cpu_mark = self._ask("stats")["cpu_s"]

    def round(self) -> dict[str, Any]:
        stats = self._ask("stats")
        stats["cpu_s"] -= self._cpu_mark
        return stats

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._ask("quit")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- one instance (a child process) ------------------------------------------------------


@dataclass
class Calls:
    """Timed calls of one store method."""

    durations: list[float] = field(default_factory=list)
    cpu: float = 0.0
    """CPU time of the calling thread in the calls (waits for the GIL or the database
    not included)."""
    items: int = 0
    empty: int = 0

    def wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter(), time.thread_time()
            result = method(*args, **kwargs)
            self.durations.append(time.perf_counter() - start)
            self.cpu += time.thread_time() - cpu
            if isinstance(result, list):
                self.items += len(result)
                self.empty += not result
            return result

        return timed

    def report(self) -> dict[str, Any]:
        return {
            "calls": len(self.durations),
            "items": self.items,
            "empty": self.empty,
            "seconds": sum(self.durations),
            "cpu_seconds": self.cpu,
            "durations_ms": [round(d * 1000, 2) for d in self.durations],
        }


def proc_cpu(pid: int) -> float | None:
    """CPU-seconds (user + system) of a live process, from /proc; None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(stat[11]) + int(stat[12])) / CLOCK_TICKS


def instance_round(
    config_path: Path, instance: str, result: Path, cluster: bool, switch_interval: float | None
) -> None:
    """Child process: one ``jobs.fetch_round`` as the daemon runs it; JSON to ``result``."""
    started = time.time()
    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)
    from sqlalchemy import event

    from newsdesk import jobs
    from newsdesk.clustering import ClusterSummary
    from newsdesk.config import load_config
    from newsdesk.store import open_store

    config = load_config(config_path)
    store = open_store(config.store_url)
    backends: set[int] = set()
    if store.dialect == "postgresql":

        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            backends.add(dbapi_connection.info.backend_pid)

        event.listen(store.engine, "connect", on_connect)
        store.engine.dispose()  # open_store's connection predates the listener
    claims, writes = Calls(), Calls()
    # Instance attributes shadow the methods fetch_round calls; nothing else changes.
    store.feeds.claim_due = claims.wrap(store.feeds.claim_due)  # type: ignore[method-assign]
    store.record_fetch = writes.wrap(store.record_fetch)  # type: ignore[method-assign]
    clustering: dict[str, float] = {}
    if cluster:
        real = jobs.cluster_stories

        def timed_cluster(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                clustering["seconds"] = time.perf_counter() - start

        jobs.cluster_stories = timed_cluster
    else:
        jobs.cluster_stories = lambda *_args, **_kwargs: ClusterSummary()

    cpu_before = time.process_time()
    round_start = time.time()
    summary = jobs.fetch_round(config, store, instance=instance)
    round_end = time.time()
    round_cpu = time.process_time() - cpu_before
    backend_cpu = [proc_cpu(pid) for pid in sorted(backends)]
    store.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    r = summary.refresh
    report = {
        "instance": instance,
        "started": started,
        "round_start": round_start,
        "round_end": round_end,
        "cluster_s": clustering.get("seconds"),
        "clustered": summary.cluster.entries,
        "ok": r.ok,
        "not_modified": r.not_modified,
        "failed": r.failed,
        "new_entries": r.new_entries,
        "left": r.left,
        "failures": r.failures[:5],
        "round_cpu_s": round_cpu,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_mb": usage.ru_maxrss / 1024,
        "claims": claims.report(),
        "record_fetch": writes.report(),
        "pg_backends": len(backends),
        "pg_cpu_s": None if None in backend_cpu else sum(b or 0.0 for b in backend_cpu),
    }
    result.write_text(json.dumps(report), encoding="utf-8")


# -- stores ------------------------------------------------------------------------------


@dataclass
class Target:
    """One store a configuration runs against, created fresh and removed afterwards."""

    engine: str
    url: str
    schema: str | None = None
    path: Path | None = None


def pg_url(schema: str) -> str:
    return f"{PG_SERVER}{'&' if '?' in PG_SERVER else '?'}options=-csearch_path%3D{schema}"


def pg_admin(statement: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def pg_version() -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_SERVER)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar_one()).split()[0]
    finally:
        engine.dispose()


@contextlib.contextmanager
def fresh_store(engine: str, work: Path, urls: Sequence[str]) -> Iterator[Target]:
    """A new store with every feed added and due; removed on exit."""
    from newsdesk.models import FeedSpec
    from newsdesk.store import open_store

    if engine == "postgresql":
        schema = f"scalebench_{uuid.uuid4().hex[:12]}"
        pg_admin(f"CREATE SCHEMA {schema}")
        target = Target(engine, pg_url(schema), schema=schema)
    else:
        path = work / f"store-{uuid.uuid4().hex[:8]}.db"
        target = Target(engine, f"sqlite:///{path}", path=path)
    try:
        store = open_store(target.url)
        try:
            store.feeds.sync_config([FeedSpec(url=url) for url in urls], datetime.now(UTC))
        finally:
            store.close()
        yield target
    finally:
        if target.schema:
            pg_admin(f"DROP SCHEMA {target.schema} CASCADE")
        if target.path:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{target.path}{suffix}").unlink(missing_ok=True)


CONFIG = """\
# Written by bench/scale_out.py.
[store]
url = "{url}"

[fetch]
allow_private_networks = true   # the bench hosts are loopback addresses
concurrency = {concurrency}
"""


def check_store(target: Target, feeds: int, entries: int) -> list[str]:
    """What is wrong with the store after a round (nothing: [])."""
    from newsdesk.store import open_store

    store = open_store(target.url)
    try:
        now = datetime.now(UTC)
        listed = store.feeds.listed()
        stored = store.entries.count()
        succeeded = sum(1 for f in listed if f.last_success_at is not None)
        failing = sum(1 for f in listed if f.error_count)
        leases = store.feeds.leases(now)
    finally:
        store.close()
    problems = []
    if stored != entries:
        problems.append(f"store: {stored} entries, expected {entries}")
    if succeeded != feeds or failing:
        problems.append(f"store: {succeeded} of {feeds} feeds succeeded, {failing} failing")
    if leases:
        problems.append(f"store: leases left after the round: {leases}")
    return problems


# -- claims alone ------------------------------------------------------------------------


def claim_bench(target: Target, instances: int, capacity: int) -> dict[str, Any]:
    """``claim_due`` back to back, as ``instances`` instances in turn would call it."""
    from sqlalchemy import text

    from newsdesk.store import open_store

    store = open_store(target.url)
    now = datetime.now(UTC)
    lease = timedelta(minutes=10)
    durations: list[float] = []
    sizes: list[int] = []
    try:
        with store.engine.begin() as conn:
            conn.execute(
                text("UPDATE feeds SET next_check_at = NULL, claimed_by = NULL, lease_until = NULL")
            )

        def checked(ids: list[int]) -> None:
            # What a stored fetch does to the columns claims read (``mark_success``).
            with store.engine.begin() as conn:
                conn.execute(
                    text(
                        "UPDATE feeds SET next_check_at = :later, last_checked_at = :now, "
                        "claimed_by = NULL, lease_until = NULL WHERE id IN "
                        f"({','.join(str(i) for i in ids)})"
                    ),
                    {"later": (now + timedelta(hours=1)).replace(tzinfo=None), "now": now},
                )

        held: dict[str, list[int]] = {}
        turn = 0
        while True:
            name = f"bench-{turn % instances + 1}"
            turn += 1
            if name in held:
                checked(held.pop(name))
            start = time.perf_counter()
            got = store.feeds.claim_due(now, instance=name, limit=capacity, lease=lease)
            elapsed = time.perf_counter() - start
            if got:
                durations.append(elapsed)
                sizes.append(len(got))
                held[name] = [f.id for f in got]
            elif held:
                for ids in held.values():
                    checked(ids)
                held.clear()
            else:
                break
    finally:
        store.close()
    median = statistics.median(durations)
    return {
        "engine": target.engine,
        "instances": instances,
        "capacity": capacity,
        "claims": len(durations),
        "feeds": sum(sizes),
        "median_ms": median * 1000,
        "p90_ms": quantile(durations, 0.9) * 1000,
        "max_ms": max(durations) * 1000,
        "first_ms": durations[0] * 1000,
        "ceiling_feeds_s": statistics.median(sizes) / median,
    }


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def claim_growth(
    sizes: Sequence[int], hosts: int, capacity: int, claims: int
) -> list[dict[str, Any]]:
    """The first ``claims`` claims of a round on a PostgreSQL feed table of each size.

    The feeds are inserted with one SQL statement (a round of ``sync_config`` would take
    minutes), spread over ``hosts`` host names, all due. Three instances claim in turn
    and hold what they claimed, as at the start of a round. The locking SELECT is timed
    apart (SQLAlchemy's cursor events) to show where a claim's time goes.
    """
    from sqlalchemy import event, text

    from newsdesk.store import open_store

    results = []
    for size in sizes:
        schema = f"scalebench_{uuid.uuid4().hex[:12]}"
        pg_admin(f"CREATE SCHEMA {schema}")
        try:
            store = open_store(pg_url(schema))
            with store.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO feeds (url, declared_url, host, source, status, created_at, "
                        "tags, weight, priority, error_count) SELECT u, u, h, 'config', 'active', "
                        "now(), '[]', 1.0, 0, 0 FROM (SELECT 'http://' || h || '/feeds/' || i || "
                        "'.rss' AS u, h FROM (SELECT i, 'h' || (i % :hosts) || '.example' AS h "
                        "FROM generate_series(0, :size - 1) AS i) AS numbered) AS named"
                    ),
                    {"hosts": hosts, "size": size},
                )
                conn.execute(text("ANALYZE feeds"))
            selects: list[float] = []

            def before(conn: Any, *_args: Any) -> None:
                conn.info["scalebench_t"] = time.perf_counter()

            def after(
                conn: Any, _cursor: Any, statement: str, *_args: Any, into: list[float] = selects
            ) -> None:
                if "FOR UPDATE" in statement:
                    into.append(time.perf_counter() - conn.info["scalebench_t"])

            event.listen(store.engine, "before_cursor_execute", before)
            event.listen(store.engine, "after_cursor_execute", after)
            now = datetime.now(UTC)
            durations = []
            for turn in range(claims):
                start = time.perf_counter()
                store.feeds.claim_due(
                    now,
                    instance=f"bench-{turn % 3 + 1}",
                    limit=capacity,
                    lease=timedelta(minutes=10),
                )
                durations.append(time.perf_counter() - start)
            store.close()
        finally:
            pg_admin(f"DROP SCHEMA {schema} CASCADE")
        median = statistics.median(durations)
        results.append(
            {
                "feeds": size,
                "claims": claims,
                "capacity": capacity,
                "median_ms": median * 1000,
                "select_ms": statistics.median(selects) * 1000,
                "ceiling_feeds_s": capacity / median,
            }
        )
    return results


# -- one timed configuration -------------------------------------------------------------


def set_subreaper() -> bool:
    """Become the reaper of orphaned descendants (the instances' forkservers), so that
    ``RUSAGE_CHILDREN`` counts their parser workers' CPU. False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def children() -> set[int]:
    """PIDs of this process's children, zombies included (/proc)."""
    pids: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/children") as handle:
            pids.update(int(pid) for pid in handle.read().split())
    return pids


def reap_orphans(keep: int, patience: float = 60.0) -> None:
    """Wait for every child but ``keep``: the instances' orphaned forkservers.

    Parser workers belong to each instance's forkserver, which outlives the instance and,
    orphaned, comes to this process (a subreaper): reaping it collects their CPU.
    """
    deadline = time.monotonic() + patience
    while orphans := children() - {keep}:
        for pid in orphans:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        if time.monotonic() > deadline:
            log(f"WARNING: processes {sorted(orphans)} still running; their CPU is not counted")
            return
        time.sleep(0.05)


def postgres_cpu() -> float:
    """CPU-seconds of every PostgreSQL process on this machine so far, exited backends
    included (the postmaster's reaped children), or 0.0 when none can be read."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                head, rest = handle.read().rsplit(")", 1)
        except OSError:
            continue
        if not head.endswith("(postgres"):
            continue
        stat = rest.split()
        total += (int(stat[11]) + int(stat[12])) / CLOCK_TICKS
        if stat[1] == "1" or not _is_postgres(int(stat[1])):  # the postmaster
            total += (int(stat[13]) + int(stat[14])) / CLOCK_TICKS
    return total


def _is_postgres(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip() == "postgres"
    except OSError:
        return False


def timed_round(
    target: Target, instances: int, args: argparse.Namespace, server: ServerProcess, work: Path
) -> dict[str, Any]:
    """Start ``instances`` fetch rounds at once against ``target``; time and check them."""
    rundir = Path(tempfile.mkdtemp(prefix="round-", dir=work))
    config = rundir / "newsdesk.toml"
    config.write_text(CONFIG.format(url=target.url, concurrency=args.concurrency))
    quiet(args, f"{target.engine} x{instances}")
    server.reset()
    pg_before, busy_before = postgres_cpu(), fetchbench.machine_busy()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_before = time.process_time()
    launched = time.time()
    start = time.perf_counter()
    procs: dict[int, subprocess.Popen[bytes]] = {}
    for n in range(1, instances + 1):
        command = [sys.executable, __file__, "--round", str(config), "--instance", f"bench-{n}"]
        command += ["--result", str(rundir / f"bench-{n}.json")]
        command += ["--cluster"] * args.cluster
        if args.switch_interval is not None:
            command += ["--switch-interval", str(args.switch_interval)]
        with open(rundir / f"bench-{n}.stderr", "wb") as err:
            proc = subprocess.Popen(command, cwd=rundir, stdout=err, stderr=subprocess.STDOUT)
        procs[proc.pid] = proc
    exits: dict[int, tuple[float, int]] = {}
    while len(exits) < instances:
        pid, status, _usage = os.wait4(-1, 0)
        code = os.waitstatus_to_exitcode(status)
        if pid in procs:
            procs[pid].returncode = code
            exits[pid] = (time.perf_counter() - start, code)
        elif pid == server.proc.pid:
            server.proc.returncode = code
            raise SystemExit(f"the feed server exited ({code}) during a round")
    wall = max(t for t, _ in exits.values())
    reap_orphans(keep=server.proc.pid)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = fetchbench.machine_busy() - busy_before
    pg_all = postgres_cpu() - pg_before
    own = time.process_time() - own_before
    srv = server.round()

    reports, problems = [], []
    for pid, proc in sorted(procs.items()):
        name = proc.args[proc.args.index("--instance") + 1]  # type: ignore[union-attr]
        err = (rundir / f"{name}.stderr").read_text(errors="replace").strip()
        if exits[pid][1] != 0:
            problems.append(f"{name} exited {exits[pid][1]}: {err[-300:]}")
            continue
        if err:
            problems.append(f"{name} stderr: {err.splitlines()[-1][:200]}")
        reports.append(json.loads((rundir / f"{name}.json").read_text()))
    if problems and len(reports) < instances:
        raise SystemExit("an instance failed:\n" + "\n".join(problems))

    feeds, entries = args.feeds, args.feeds * args.items
    ok = sum(r["ok"] for r in reports)
    failed = sum(r["failed"] + r["not_modified"] + r["left"] for r in reports)
    new = sum(r["new_entries"] for r in reports)
    if ok != feeds or failed:
        problems.append(f"instances: {ok} of {feeds} feeds ok, {failed} failed or not done")
    if new != entries:
        problems.append(f"instances: {new} new entries, expected {entries}")
    for key, label in (("missing", "never fetched"), ("twice", "fetched more than once")):
        if srv[key]:
            problems.append(f"server: {srv[key]} feeds {label}")
    if srv["unknown"] or srv["wrong_host"] or srv["requests"] != feeds:
        problems.append(
            f"server: {srv['requests']} requests for {feeds} feeds, {srv['unknown']} for "
            f"unknown paths, {srv['wrong_host']} to the wrong host"
        )
    problems += check_store(target, feeds, entries)

    instances_cpu = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    main_cpu = sum(r["cpu_s"] for r in reports)
    pg_ours = [r["pg_cpu_s"] for r in reports]
    pg_backends = None if None in pg_ours else sum(pg_ours)
    claims = [d for r in reports for d in r["claims"]["durations_ms"]]
    round_spans = [r["round_end"] - r["round_start"] for r in reports]
    # The one store thread of an instance runs its claims and its record_fetch calls.
    store_thread = max(
        (r["claims"]["seconds"] + r["record_fetch"]["seconds"])
        / (r["round_end"] - r["round_start"])
        for r in reports
    )
    accounted = instances_cpu + srv["cpu_s"] + pg_all + own
    return {
        "engine": target.engine,
        "instances": instances,
        "wall_s": wall,
        "feeds_per_s": feeds / wall,
        "round_span_s": max(r["round_end"] for r in reports)
        - min(r["round_start"] for r in reports),
        "startup_s": min(r["round_start"] for r in reports) - launched,
        "round_s": statistics.median(round_spans),
        "first_done_s": min(t for t, _ in exits.values()),
        "cluster_s": max((r["cluster_s"] or 0.0) for r in reports) if args.cluster else None,
        "cpu_instances_s": instances_cpu,
        "cpu_main_s": main_cpu,
        "cpu_parsers_s": instances_cpu - main_cpu,
        "cpu_main_round_s": sum(r["round_cpu_s"] for r in reports),
        "cpu_pg_backends_s": pg_backends,
        "cpu_pg_all_s": pg_all,
        "cpu_server_s": srv["cpu_s"],
        "cpu_bench_s": own,
        "machine_busy_s": busy,
        "cores_busy": busy / wall,
        "others_cores": max(0.0, busy - accounted) / wall,
        "claims": len(claims),
        "claim_median_ms": statistics.median(claims) if claims else 0.0,
        "claim_max_ms": max(claims, default=0.0),
        "claim_s": sum(claims) / 1000,
        "empty_claims": sum(r["claims"]["empty"] for r in reports),
        "record_fetch_ms": 1000
        * sum(r["record_fetch"]["seconds"] for r in reports)
        / max(1, sum(r["record_fetch"]["calls"] for r in reports)),
        "store_thread_busy": store_thread,
        "record_fetch_cpu_ms": 1000
        * sum(r["record_fetch"]["cpu_seconds"] for r in reports)
        / max(1, sum(r["record_fetch"]["calls"] for r in reports)),
        "claim_cpu_s": sum(r["claims"]["cpu_seconds"] for r in reports),
        "per_instance_feeds": [r["ok"] for r in reports],
        "max_rss_mb": max(r["max_rss_mb"] for r in reports),
        "server": srv,
        "problems": problems,
    }


# -- the report --------------------------------------------------------------------------


def label(engine: str, instances: int) -> str:
    return f"{'PostgreSQL' if engine == 'postgresql' else 'SQLite'} x{instances}"


@dataclass
class Report:
    args: argparse.Namespace
    rounds: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    claim_growth: list[dict[str, Any]] = field(default_factory=list)
    code: str = ""
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)

    def configs(self) -> list[tuple[str, int]]:
        seen = dict.fromkeys((r["engine"], r["instances"]) for r in self.rounds)
        return sorted(seen, key=lambda c: (c[0] != "sqlite", c[1]))

    def median(self, engine: str, instances: int) -> dict[str, Any]:
        """Medians over the runs of one configuration, and what they imply."""
        rows = [r for r in self.rounds if (r["engine"], r["instances"]) == (engine, instances)]
        out: dict[str, Any] = {"engine": engine, "instances": instances, "runs": len(rows)}
        for key, value in rows[0].items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                values = [r[key] for r in rows if r[key] is not None]
                out[key] = statistics.median(values) if values else None
        out["wall_min_s"] = min(r["wall_s"] for r in rows)
        out["wall_max_s"] = max(r["wall_s"] for r in rows)
        out["problems"] = sorted({p for r in rows for p in r["problems"]})
        # Other people's load took cores from some rounds more than from others: feeds/s
        # per core they left is the fairer comparison between configurations.
        out["feeds_per_free_core"] = statistics.median(
            r["feeds_per_s"] / max(0.1, self.cores - r["others_cores"]) for r in rows
        )
        a = self.args
        per_feed = (out["cpu_instances_s"] + (out["cpu_pg_backends_s"] or 0.0)) / a.feeds
        with_server = per_feed + out["cpu_server_s"] / a.feeds
        # newsdesk's CPU per feed: instances, parser workers, their PostgreSQL backends.
        out["cpu_ms_per_feed"] = 1000 * per_feed
        # The instances' main processes during their rounds only (no start-up).
        out["main_ms_per_feed"] = 1000 * out["cpu_main_round_s"] / a.feeds
        out["latency_ceiling"] = instances * a.concurrency / (sum(a.latency) / 2)
        out["cpu_ceiling"] = self.cores / with_server
        out["cpu_ceiling_newsdesk"] = self.cores / per_feed
        out["of_ceiling"] = out["feeds_per_s"] / min(out["latency_ceiling"], out["cpu_ceiling"])
        return out

    def summary(self) -> list[dict[str, Any]]:
        rows = [self.median(*config) for config in self.configs()]
        base = next((r for r in rows if r["engine"] == "postgresql" and r["instances"] == 1), None)
        for row in rows:
            row["scaling"] = row["feeds_per_s"] / base["feeds_per_s"] if base else None
            row["free_core_scaling"] = (
                row["feeds_per_free_core"] / base["feeds_per_free_core"] if base else None
            )
        return rows

    def table(self) -> str:
        a = self.args
        lines = [
            "| store | instances | wall (median, min-max) | feeds/s | x PostgreSQL x1 | "
            "cores busy (others') | feeds/s per core others left (x PostgreSQL x1) | "
            "CPU-s per 1,000 feeds: instances (main + parsers) | PostgreSQL backends | "
            "feed server | latency ceiling | CPU ceiling | of ceiling |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        k = 1000 / a.feeds
        for r in self.summary():
            pg = r["cpu_pg_backends_s"]
            lines.append(
                f"| {'PostgreSQL' if r['engine'] == 'postgresql' else 'SQLite'} | "
                f"{r['instances']} | {r['wall_s']:.1f} s ({r['wall_min_s']:.1f}-"
                f"{r['wall_max_s']:.1f}) | {r['feeds_per_s']:.0f} | "
                + (f"{r['scaling']:.2f}x" if r["scaling"] is not None else "-")
                + f" | {r['cores_busy']:.2f} ({r['others_cores']:.2f}) | "
                f"{r['feeds_per_free_core']:.0f} "
                + (f"({r['free_core_scaling']:.2f}x)" if r["free_core_scaling"] else "")
                + " | "
                f"{r['cpu_instances_s'] * k:.2f} ({r['cpu_main_s'] * k:.2f} + "
                f"{r['cpu_parsers_s'] * k:.2f}) | "
                + (f"{pg * k:.2f}" if pg is not None and r["engine"] == "postgresql" else "-")
                + f" | {r['cpu_server_s'] * k:.2f} | {r['latency_ceiling']:,.0f} | "
                f"{r['cpu_ceiling']:,.0f} | {r['of_ceiling']:.2f} |"
            )
        return "\n".join(lines)

    def claims_lines(self) -> list[str]:
        lines = []
        for c in self.claims:
            lines.append(
                f"`claim_due` alone on {'PostgreSQL' if c['engine'] == 'postgresql' else 'SQLite'}"
                f" ({c['feeds']:,} feeds as {c['instances']} instance(s) in turn, "
                f"{c['capacity']} a claim): median {c['median_ms']:.0f} ms a claim (p90 "
                f"{c['p90_ms']:.0f}, max {c['max_ms']:.0f}, first {c['first_ms']:.0f}), so at "
                f"most {c['ceiling_feeds_s']:,.0f} feeds/s can be claimed, over all instances "
                "(claims are made one at a time)."
            )
        if self.claim_growth:
            sizes = "; ".join(
                f"{g['feeds']:,} feeds: {g['median_ms']:.0f} ms (the locking SELECT "
                f"{g['select_ms']:.0f} ms) = {g['ceiling_feeds_s']:,.0f} feeds/s"
                for g in self.claim_growth
            )
            lines.append(
                "The first claims of a round as the table grows (PostgreSQL, feeds inserted "
                f"by SQL, all due, {self.claim_growth[0]['claims']} claims of "
                f"{self.claim_growth[0]['capacity']} each, median): {sizes}."
            )
        return lines

    def reading(self) -> list[str]:
        """What the figures say, one bullet each (written from the figures)."""
        a = self.args
        rows = {(r["engine"], r["instances"]): r for r in self.summary()}
        pg = sorted((n, r) for (e, n), r in rows.items() if e == "postgresql")
        lines = []
        if pg:
            steps = ", ".join(
                f"{n} instance{'s' * (n > 1)} {r['feeds_per_s']:.0f} feeds/s "
                f"({r['scaling']:.2f}x; {r['cores_busy']:.2f} cores busy, "
                f"{r['others_cores']:.2f} of them others'; {r['cpu_ms_per_feed']:.1f} CPU-ms "
                "a feed)"
                for n, r in pg
            )
            lines.append(f"PostgreSQL: {steps}.")
            n1 = pg[0][1]
            busy = [r["cores_busy"] for r in rows.values()]
            if min(busy) >= 0.9 * self.cores:
                free = ", ".join(f"{r['feeds_per_free_core']:.0f} with {n}" for n, r in pg if n > 1)
                best_n, best = max(pg, key=lambda p: p[1]["feeds_per_free_core"])
                where = (
                    "one instance"
                    if best_n == 1 or best["free_core_scaling"] < 1.1
                    else f"{best_n} instances"
                )
                lines.append(
                    f"Where it stops, in these rounds: at {where}. Every configuration "
                    f"kept the cores full ({min(busy):.2f}-{max(busy):.2f} of {self.cores} "
                    "busy, others' load included), so the round is CPU-bound: a second or "
                    "third instance brings no cores, only more processes sharing the same "
                    "ones, and what differs between configurations is noise (the cores others "
                    "took) and the CPU per feed "
                    f"({n1['cpu_ms_per_feed']:.1f} ms with one instance, "
                    f"{pg[-1][1]['cpu_ms_per_feed']:.1f} with {pg[-1][0]}). Per core that "
                    f"others left, one instance did {n1['feeds_per_free_core']:.0f} feeds/s, "
                    f"{free}. The latency-bound ceiling ({n1['latency_ceiling']:,.0f} feeds/s "
                    "per instance) is far away: waiting for the network is not what limits "
                    "a round here."
                )
            else:
                lines.append(
                    f"The cores were not always full ({min(busy):.2f}-{max(busy):.2f} of "
                    f"{self.cores} busy): something other than CPU held some rounds back; "
                    "see the store-thread and claim figures below."
                )
            lines.append(
                f"CPU per feed with one instance on PostgreSQL: "
                f"{1000 * n1['cpu_main_s'] / a.feeds:.1f} ms in the main process (event loop, "
                "HTTP, the store thread; interpreter start included), "
                f"{1000 * n1['cpu_parsers_s'] / a.feeds:.1f} ms in parser workers, "
                f"{1000 * (n1['cpu_pg_backends_s'] or 0) / a.feeds:.1f} ms in its PostgreSQL "
                f"backend, and {1000 * n1['cpu_server_s'] / a.feeds:.1f} ms in the feed server "
                f"(the test harness, which shares the cores too). With every other process "
                f"gone these {self.cores} cores would do about {n1['cpu_ceiling']:,.0f} "
                f"feeds/s ({n1['cpu_ceiling_newsdesk']:,.0f} with the feed server elsewhere)."
            )
            lines += self.bigger_machine(n1, pg)
        sqlite = rows.get(("sqlite", 1))
        if sqlite and pg:
            base = pg[0][1]
            lines.append(
                f"SQLite x1: {sqlite['feeds_per_s']:.0f} feeds/s, "
                f"{sqlite['feeds_per_s'] / base['feeds_per_s']:.2f}x PostgreSQL x1, for "
                f"{sqlite['cpu_ms_per_feed']:.1f} CPU-ms a feed against "
                f"{base['cpu_ms_per_feed']:.1f} (PostgreSQL's own backend included); "
                f"record_fetch {sqlite['record_fetch_ms']:.1f} ms a feed against "
                f"{base['record_fetch_ms']:.1f} ms."
                + (
                    " On one small machine SQLite is the cheaper store; PostgreSQL is for "
                    "more than one instance (or machine)."
                    if sqlite["cpu_ms_per_feed"] < base["cpu_ms_per_feed"]
                    else ""
                )
            )
        for (engine, n), r in sorted(rows.items()):
            lines.append(
                f"{label(engine, n)}: store thread busy {r['store_thread_busy']:.0%} of "
                f"its round (claims + record_fetch, {r['record_fetch_ms']:.1f} ms a feed); "
                f"{r['claims']:.0f} claims, median {r['claim_median_ms']:.0f} ms (max "
                f"{r['claim_max_ms']:.0f}), {r['claim_s']:.1f} s in all; start-up "
                f"{r['startup_s']:.1f} s; "
                + (
                    f"first instance done at {r['first_done_s']:.1f} s of {r['wall_s']:.1f} s; "
                    if n > 1
                    else ""
                )
                + f"peak RSS of an instance {r['max_rss_mb']:.0f} MB."
            )
        return lines

    def bigger_machine(self, n1: dict[str, Any], pg: list[tuple[int, dict[str, Any]]]) -> list[str]:
        """What more cores would show, from the single-instance figures."""
        a = self.args
        main = n1["main_ms_per_feed"]
        per_instance = 1000 / main
        # The store thread's wall time per feed in the single-instance round that others
        # disturbed least: its own CPU, PostgreSQL's, and its waits (GIL, commits).
        quiet = min(
            (r for r in self.rounds if (r["engine"], r["instances"]) == ("postgresql", 1)),
            key=lambda r: r["others_cores"],
        )
        pg_ms = 1000 * (quiet["cpu_pg_backends_s"] or 0.0) / a.feeds
        writer_ms = quiet["record_fetch_ms"] + 1000 * quiet["claim_s"] / a.feeds
        writer = 1000 / writer_ms
        cap = min(per_instance, writer)
        total = n1["cpu_ms_per_feed"]
        claims = next((c for c in self.claims if c["engine"] == "postgresql"), None)
        claim_ceiling = claims["ceiling_feeds_s"] if claims else float("inf")
        examples = []
        for cores in (8, 16, 32):
            reachable = min(cores * 1000 / total, claim_ceiling)
            examples.append(
                f"{cores} cores: about {reachable:,.0f} feeds/s, with {reachable / cap:.0f} "
                "or more instances"
            )
        claim_text = (
            f"and by claims, made one at a time across instances: at most "
            f"{claim_ceiling:,.0f} feeds/s at {a.feeds:,} feeds, less as the feed table grows "
            "(see the claim figures above)"
            if claims
            else "and by claims, made one at a time across instances"
        )
        return [
            "A bigger machine: the latency-bound ceiling grows by "
            f"{n1['latency_ceiling']:,.0f} feeds/s with every instance, so instances scale "
            "about linearly for as long as each has the CPU it needs. One instance is capped "
            "by its main process, one GIL for the event loop and the store thread "
            f"({main:.1f} CPU-ms a feed during the round = at most {per_instance:,.0f} "
            "feeds/s on a core of its own; parsing is on other cores), and by its one store "
            "thread, which writes every feed in turn: in the single-instance round others "
            f"disturbed least ({quiet['others_cores']:.2f} cores; {quiet['feeds_per_s']:.0f} "
            f"feeds/s with {quiet['cores_busy']:.2f} cores busy) it was busy "
            f"{quiet['store_thread_busy']:.0%} of the round, {writer_ms:.1f} ms a feed "
            f"(record_fetch {quiet['record_fetch_ms']:.1f} ms, of which "
            f"{quiet['record_fetch_cpu_ms']:.1f} ms its own CPU and {pg_ms:.1f} ms "
            f"PostgreSQL's; the rest is waiting) = at most {writer:,.0f} feeds/s. The whole is "
            f"capped by the cores, {total:.1f} CPU-ms a feed (instances, parsers, "
            f"PostgreSQL), {claim_text}. So, with the feed servers elsewhere and PostgreSQL "
            "on the same cores: " + "; ".join(examples) + "."
        ]


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces ``args`` (options left at their defaults omitted)."""
    parts = ["python bench/scale_out.py"]
    if args.quick:
        parts.append("--quick")
    base = QUICK if args.quick else DEFAULTS
    for name, default in {**base, "items": 5, "hosts": 2000, "concurrency": 150}.items():
        if name not in ("quiet_wait", "claim_growth") and getattr(args, name) != default:
            parts.append(f"--{name.replace('_', '-')} {getattr(args, name)}")
    if args.instances != [1, 2, 3]:
        parts.append(f"--instances {','.join(map(str, args.instances))}")
    if tuple(args.latency) != (0.05, 0.15):
        parts.append(f"--latency {args.latency[0]} {args.latency[1]}")
    parts += ["--no-sqlite"] * args.no_sqlite + ["--cluster"] * args.cluster
    if args.switch_interval is not None:
        parts.append(f"--switch-interval {args.switch_interval}")
    return " ".join(parts)


def write_section(report: Report, machine: str, versions: str) -> None:
    """The "Scale-out" section of docs/benchmarks.md, from a run's figures."""
    a = report.args
    body = [
        f"{machine} {versions}."
        + ("" if report.code in machine else f" Measured: {report.code}.")
        + " The machine is shared and noisy: the cores others kept busy are shown.",
        "",
        "```",
        command_line(a),
        "```",
        "",
        f"- Feeds: {a.feeds:,} generated RSS 2.0 feeds x {a.items} entries (`bench/fetch.py`'s "
        f"generator, seed {a.seed}), every entry distinct, on {a.hosts:,} loopback host names "
        f"({host_address(0)} ... {host_address(a.hosts - 1)}, feed i on host i mod "
        f"{a.hosts}), served by one `tests/feedserver.py` in its own process with "
        f"{a.latency[0] * 1000:.0f}-{a.latency[1] * 1000:.0f} ms latency per response.",
        f"- Each instance is a process running the daemon's fetch job, "
        f"`jobs.fetch_round(config, store, instance=...)`, with `concurrency = "
        f"{a.concurrency}`, the default `per_host` (2) and one parser worker per core; "
        "instances claim feeds as they go (`claim_due`). "
        + (
            "Clustering is kept and timed apart."
            if a.cluster
            else "Clustering (the last step of `fetch_round`) is replaced by a no-op: the "
            "fetch round is measured."
        ),
        "- Timed: from starting the instances until the last exits (interpreter start "
        f"included); feeds/s = {a.feeds:,} / that. A fresh store for every round (a new "
        "PostgreSQL schema, or a new SQLite file), all feeds due. Medians of "
        f"{a.runs} runs.",
        "- CPU: the instances with their parser workers; the PostgreSQL backends serving "
        "them; the feed server. Latency ceiling: instances x concurrency / 0.1 s. CPU "
        f"ceiling: {report.cores} cores / the CPU-s per feed of all three.",
        "- Checked in every round: every feed fetched exactly once (the server's request "
        "log), each from its own host; every feed stored ok; feeds x entries entries "
        "stored; no lease left. "
        + (
            "All checks passed."
            if not any(r["problems"] for r in report.rounds)
            else "**Some checks failed** (see below)."
        ),
        "",
        report.table(),
        "",
        *(f"- {line}" for line in report.claims_lines()),
        "",
        "Reading:",
        "",
        *(f"- {line}" for line in report.reading()),
    ]
    problems = sorted({p for r in report.rounds for p in r["problems"]})
    if problems:
        body += ["", "Problems:", "", *(f"- {p}" for p in problems)]
    benchdoc.write_section(SECTION, "\n".join(body))


# -- main --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time one fetch round of many feeds by 1, 2, 3 instances on PostgreSQL "
        "and 1 on SQLite."
    )
    parser.add_argument("--feeds", type=int, help="feeds (20000; --quick: 1000)")
    parser.add_argument("--items", type=int, default=5, help="entries per feed (5)")
    parser.add_argument(
        "--hosts", type=int, default=2000, help="loopback host names, feed i on host i %% N (2000)"
    )
    parser.add_argument("--runs", type=int, help="repetitions; medians (3; --quick: 1)")
    parser.add_argument(
        "--instances",
        type=lambda s: [int(n) for n in s.split(",")],
        default=[1, 2, 3],
        help="instance counts on PostgreSQL (1,2,3)",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite x1 round")
    parser.add_argument(
        "--concurrency", type=int, default=150, help="[fetch] concurrency of every instance (150)"
    )
    parser.add_argument(
        "--latency",
        type=float,
        nargs=2,
        default=(0.05, 0.15),
        metavar=("LOW", "HIGH"),
        help="seconds added to each response, uniform (0.05 0.15)",
    )
    parser.add_argument("--seed", type=int, default=20261123, help="feeds and latency seed")
    parser.add_argument(
        "--cluster", action="store_true", help="keep fetch_round's clustering (timed apart)"
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        help="sys.setswitchinterval in every instance, seconds (Python's default: 0.005); "
        "an experiment on the store thread's waits for the GIL",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        help="seconds to wait, before each round, for other processes to go quiet (20)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 1,000 feeds, 1 run")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON result ({OUT})")
    parser.add_argument("--no-doc", action="store_true", help="don't write docs/benchmarks.md")
    parser.add_argument("--no-claim-bench", action="store_true", help="skip timing claim_due alone")
    parser.add_argument(
        "--claim-growth",
        type=lambda s: [int(n) for n in s.split(",") if n],
        help="PostgreSQL feed-table sizes at which the first claims are timed "
        "(20000,100000,200000; --quick: 2000; '' to skip)",
    )
    parser.add_argument(
        "--report", type=Path, metavar="JSON", help="report a saved result again, run nothing"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--round", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--instance", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.quick:
        args.no_doc = True
    if not 1 <= args.hosts <= 250 * 256:
        parser.error("--hosts must be between 1 and 64000")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def quiet(args: argparse.Namespace, what: str) -> None:
    if args.quiet_wait <= 0:
        return
    load = fetchbench.wait_for_quiet(args.quiet_wait)
    if load >= 0.3:
        log(f"{what}: the machine is still busy ({load:.2f} cores used by others); going on")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(args)
        return 0
    if args.round is not None:
        instance_round(args.round, args.instance, args.result, args.cluster, args.switch_interval)
        return 0
    if args.report is not None:
        return report_saved(args.report, write_doc=not args.no_doc)
    if not set_subreaper():
        log("WARNING: not a child subreaper; the parser workers' CPU is not counted")
    started = time.perf_counter()
    report = Report(args, code=benchdoc.code_state())
    configs = [("sqlite", 1)] * (not args.no_sqlite)
    configs += [("postgresql", n) for n in args.instances]
    capacity = 2 * args.concurrency  # feeds a round has in hand at once (IN_HAND_PER_FETCH)
    work = Path(tempfile.mkdtemp(prefix="newsdesk-bench-scale-"))
    server = ServerProcess(args)
    try:
        urls = [feed_url(i, args.hosts, server.port) for i in range(args.feeds)]
        log(f"{args.feeds:,} feeds on {min(args.hosts, args.feeds):,} hosts, port {server.port}")
        for run in range(1, args.runs + 1):
            shift = (run - 1) % len(configs)
            for engine, instances in configs[shift:] + configs[:shift]:
                prepared = time.perf_counter()
                with fresh_store(engine, work, urls) as target:
                    log(
                        f"run {run}: {label(engine, instances)}: store ready in "
                        f"{time.perf_counter() - prepared:.0f} s"
                    )
                    result = timed_round(target, instances, args, server, work)
                    result["run"] = run
                    report.rounds.append(result)
                    log(f"run {run}: {label(engine, instances)}: {round_line(result)}")
                    for problem in result["problems"]:
                        log(f"  PROBLEM: {problem}")
                    last_of_engine = instances == max(n for e, n in configs if e == engine)
                    if run == args.runs and last_of_engine and not args.no_claim_bench:
                        report.claims.append(claim_bench(target, instances, capacity))
                        log(report.claims_lines()[len(report.claims) - 1])
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)
    if args.claim_growth and not args.no_claim_bench:
        report.claim_growth = claim_growth(args.claim_growth, args.hosts, capacity, GROWTH_CLAIMS)
        log(report.claims_lines()[-1])
    if report.code != benchdoc.code_state():
        report.code = f"changed during the run, from {report.code} to {benchdoc.code_state()}"
    failed = sorted({p for r in report.rounds for p in r["problems"]})
    out = args.out or OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    saved = {
        "checks_passed": not failed,
        "problems": failed,
        "command": command_line(args),
        "args": {k: v for k, v in vars(args).items() if k not in ("out", "result", "report")},
        "machine": benchdoc.machine_line(),
        "versions": f"{fetchbench.versions()}, PostgreSQL {pg_version()}",
        "cores": report.cores,
        "code": report.code,
        "summary": report.summary(),
        "claim_bench": report.claims,
        "claim_growth": report.claim_growth,
        "rounds": report.rounds,
    }
    out.write_text(json.dumps(saved, indent=1, default=str), encoding="utf-8")
    print(f"\nwrote {out}")
    show(report)
    if not args.no_doc:
        write_section(report, saved["machine"], saved["versions"])
        print(f"wrote the {SECTION!r} section of docs/benchmarks.md")
    print(f"total bench time {time.perf_counter() - started:.0f} s")
    return 0 if not failed else 1


def round_line(r: dict[str, Any]) -> str:
    """One round's figures, for the log."""
    return (
        f"{r['wall_s']:.1f} s, {r['feeds_per_s']:.0f} feeds/s (round span "
        f"{r['round_span_s']:.1f} s, start-up {r['startup_s']:.1f} s); CPU instances "
        f"{r['cpu_instances_s']:.0f} s (main {r['cpu_main_s']:.0f}, parsers "
        f"{r['cpu_parsers_s']:.0f}), PostgreSQL ours {r['cpu_pg_backends_s'] or 0:.0f} s (all "
        f"{r['cpu_pg_all_s']:.0f}), server {r['cpu_server_s']:.0f} s; cores busy "
        f"{r['cores_busy']:.2f} (others {r['others_cores']:.2f}); {r['claims']} claims, median "
        f"{r['claim_median_ms']:.0f} ms; record_fetch {r['record_fetch_ms']:.1f} ms; store "
        f"thread busy {r['store_thread_busy']:.0%}; feeds per instance {r['per_instance_feeds']}"
    )


def show(report: Report) -> list[str]:
    """Print the table, the reading and the checks; the failed checks."""
    print()
    print(report.table())
    print()
    for line in report.claims_lines() + report.reading():
        print(f"- {line}")
    failed = sorted({p for r in report.rounds for p in r["problems"]})
    print()
    print("checks: " + ("all passed" if not failed else f"{len(failed)} FAILED"))
    for problem in failed:
        print(f"  {problem}")
    return failed


def report_saved(path: Path, *, write_doc: bool) -> int:
    """``--report``: the table, reading and doc section of a saved result."""
    saved = json.loads(path.read_text(encoding="utf-8"))
    args = argparse.Namespace(
        **{"quick": False, "cluster": False, "switch_interval": None, **saved["args"]}
    )
    report = Report(
        args,
        rounds=saved["rounds"],
        claims=saved.get("claim_bench", []),
        claim_growth=saved.get("claim_growth", []),
        code=saved["code"],
        cores=saved.get("cores", os.cpu_count() or 1),
    )
    failed = show(report)
    if write_doc:
        versions = saved.get("versions") or f"{fetchbench.versions()}, PostgreSQL {pg_version()}"
        write_section(report, saved["machine"], versions)
        print(f"wrote the {SECTION!r} section of docs/benchmarks.md")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
