"""Story clustering on PostgreSQL against SQLite: the same entries, the same stories.

**Entries.** ``bench/cluster_scale.py``'s generated stream (``--size``, 100,000 by
default, ``--seed``), stored once in a SQLite store (not timed).

**Timed**, each of ``--runs`` runs, in a child process pinned to one core (``--cpu``),
as a daemon catching up would: one ``cluster_pending(store, ClusterParams(), now=...)``
call over every entry of

- a copy of that SQLite file, and
- a fresh PostgreSQL schema the SQLite store was copied into by ``copy_store`` (what
  ``newsdesk db copy`` does, ANALYZE included; its time is reported, not counted).

The two alternate which goes first from run to run. Reported: medians of the wall
time of that call, the client's CPU time, and the server's (every ``postgres`` process
on the machine, as ``bench/scale_out.py`` counts it: the server is local and not
pinned). PostgreSQL's time over SQLite's is the figure of merit: the same work, one
store in the process, one over a socket. Both must give the same stories: a digest of
every entry's story (named by the story's first entry, as story ids are the store's)
and of the term counts is compared on every run.

Usage: ``python bench/cluster_pg.py [--size 100000] [--runs 3] [--no-doc]``; needs the
PostgreSQL server of the tests (``NEWSDESK_TEST_PG``, default
postgresql+psycopg://postgres@127.0.0.1:5432/test), works in a schema it drops, and
writes the "Clustering on PostgreSQL" section of docs/benchmarks.md unless ``--no-doc``.
A default run took about 12 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

import cluster_scale as scale
from benchdoc import machine_line, write_section
from newsdesk.cluster import ClusterParams
from newsdesk.clustering import cluster_pending
from newsdesk.store import open_store
from newsdesk.store.copy import copy_store
from scale_out import pg_admin, pg_url, pg_version, postgres_cpu

SECTION = "Clustering on PostgreSQL"
SNAPSHOT_ENV = "CLUSTER_PG_SNAPSHOT"


# -- the child (pinned) ------------------------------------------------------------------


def child(url: str, now: datetime) -> dict[str, Any]:
    store = open_store(url)
    server = postgres_cpu() if url.startswith("postgresql") else 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    summary = cluster_pending(store, ClusterParams(), now=now)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server = postgres_cpu() - server if url.startswith("postgresql") else 0.0
    digest = stories_digest(store)
    store.close()
    return {
        "wall": wall,
        "cpu": cpu,
        "server": server,
        "entries": summary.entries,
        "digest": digest,
        "peak": scale.proc_status()["VmHWM"],
    }


def stories_digest(store: Any) -> str:
    """Every entry with its story's first entry, and every term count: equal digests,
    equal clusterings, whatever ids each store gave its stories."""
    digest = hashlib.sha256()
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT se.entry_id, f.first FROM story_entries se JOIN "
                "(SELECT story_id, min(entry_id) AS first FROM story_entries GROUP BY story_id) f "
                "ON f.story_id = se.story_id ORDER BY se.entry_id"
            )
        )
        for row in rows:
            digest.update(f"{row[0]}:{row[1]};".encode())
        # Byte order, as SQLite sorts text: PostgreSQL's collation may differ.
        counts = conn.execute(text("SELECT term, entries FROM term_counts"))
        for term, entries in sorted(counts, key=lambda r: r[0].encode()):
            digest.update(f"{term}:{entries};".encode())
    return digest.hexdigest()[:12]


# -- the parent --------------------------------------------------------------------------


def run_sqlite(base: Path, work: Path, now: datetime, args: argparse.Namespace) -> dict[str, Any]:
    copy = work / "run.db"
    shutil.copyfile(base, copy)
    scale.quiet(args, "SQLite")
    out, others, _ = run_child(f"sqlite:///{copy}", now, args)
    for leftover in copy.parent.glob(copy.name + "*"):
        leftover.unlink()
    out["others"] = others
    scale.log(f"SQLite: {out['wall']:.1f} s wall, {out['cpu']:.1f} s CPU")
    return out


def run_postgresql(base: Path, now: datetime, args: argparse.Namespace) -> dict[str, Any]:
    schema = f"clusterbench_{uuid.uuid4().hex[:12]}"
    pg_admin(f"CREATE SCHEMA {schema}")
    try:
        source = open_store(f"sqlite:///{base}", migrate=False)
        try:
            copied = copy_store(source.engine, pg_url(schema))
        finally:
            source.close()
        scale.quiet(args, "PostgreSQL")
        out, others, _ = run_child(pg_url(schema), now, args)
    finally:
        pg_admin(f"DROP SCHEMA {schema} CASCADE")
    out["others"] = max(0.0, others - out["server"] / out["wall"])
    out["copy"] = copied.seconds
    scale.log(
        f"PostgreSQL: {out['wall']:.1f} s wall, {out['cpu']:.1f} s client CPU, "
        f"{out['server']:.1f} s server CPU (copy {copied.seconds:.0f} s)"
    )
    return out


def run_child(
    url: str, now: datetime, args: argparse.Namespace
) -> tuple[dict[str, Any], float, bool]:
    return scale.run_child(
        ["--child", url, "--now", now.isoformat()], args.cpu, script=Path(__file__)
    )


def report(
    args: argparse.Namespace, state: str, size: int, days: float, runs: list[dict[str, Any]]
) -> str:
    def med(engine: str, key: str) -> float:
        return statistics.median(r[engine][key] for r in runs)

    def spread(engine: str, key: str) -> str:
        values = [r[engine][key] for r in runs]
        return f"{min(values):.1f}-{max(values):.1f}"

    same = all(r["sqlite"]["digest"] == r["postgresql"]["digest"] for r in runs)
    both_cpu = med("postgresql", "cpu") + med("postgresql", "server")
    sqlite_wall, pg_wall = med("sqlite", "wall"), med("postgresql", "wall")
    command = "python bench/cluster_pg.py" + (f" --size {size}" if size != 100_000 else "")
    command += f" --runs {args.runs}" if args.runs != 3 else ""
    lines = [
        # machine_line() names HEAD when the report is written, not the code measured.
        machine_line().split(" Code: ")[0],
        f"Code measured: {state}. PostgreSQL {pg_version()}, on the same machine.",
        "",
        "```",
        command,
        "```",
        "",
        f"{size:,} entries of the `bench/cluster_scale.py` stream ({days:.0f} days), one "
        "`cluster_pending` call over all of them in a child pinned to one core, on a copy "
        "of a SQLite store and on a PostgreSQL schema `copy_store` filled from it "
        "(`newsdesk db copy`, ANALYZE included); medians of "
        f"{len(runs)} runs (min-max), the engines alternating. Server CPU: every "
        "`postgres` process during the call (not pinned; the machine has 2 cores).",
        "",
        "| store | wall | client CPU | server CPU | peak RSS | others busy |",
        "|---|--:|--:|--:|--:|--:|",
        f"| SQLite | {sqlite_wall:.1f} s ({spread('sqlite', 'wall')}) | "
        f"{med('sqlite', 'cpu'):.1f} s | - | {med('sqlite', 'peak'):.0f} MB | "
        f"{med('sqlite', 'others'):.2f} cores |",
        f"| PostgreSQL | {pg_wall:.1f} s ({spread('postgresql', 'wall')}) | "
        f"{med('postgresql', 'cpu'):.1f} s | {med('postgresql', 'server'):.1f} s | "
        f"{med('postgresql', 'peak'):.0f} MB | {med('postgresql', 'others'):.2f} cores |",
        "",
        f"- PostgreSQL / SQLite wall time: {pg_wall / sqlite_wall:.2f}×; client and server "
        f"CPU together {both_cpu / med('sqlite', 'cpu'):.2f}× "
        "SQLite's CPU.",
        f"- Same stories and term counts on both stores, every run: {'yes' if same else 'NO'}.",
        "- `copy_store` of the unclustered store into PostgreSQL: "
        f"{med('postgresql', 'copy'):.0f} s (not timed above).",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="entries (100000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per store; medians reported")
    parser.add_argument("--seed", type=int, default=scale.SEED)
    scale.add_run_args(parser)
    parser.add_argument("--no-doc", action="store_true", help="don't write docs/benchmarks.md")
    parser.add_argument("--pin", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.child:
        if args.pin is not None:
            os.sched_setaffinity(0, {args.pin})
        print(json.dumps(child(args.child, datetime.fromisoformat(args.now))))
        return 0
    if not scale.UCI.exists() or not scale.SEMEVAL.exists():
        print(f"corpus not found under {scale.UCI.parents[1]}", file=sys.stderr)
        return 1
    work, state = scale.on_snapshot(args.code, argv, Path(__file__), SNAPSHOT_ENV)
    scale.log(f"measuring {state}, copied to {work / 'src'}")
    try:
        base = work / "base.db"
        populated = scale.populate(base, args.size, args.seed, scale.Corpus())
        scale.log(f"{args.size:,} entries stored in {populated.seconds:.0f} s")
        now = populated.last + timedelta(minutes=1)
        runs = []
        for run in range(args.runs):
            first_pg = run % 2 == 1
            one: dict[str, Any] = {}
            for engine in ("postgresql", "sqlite") if first_pg else ("sqlite", "postgresql"):
                if engine == "sqlite":
                    one[engine] = run_sqlite(base, work, now, args)
                else:
                    one[engine] = run_postgresql(base, now, args)
                if one[engine]["entries"] != args.size:
                    raise RuntimeError(f"{engine}: clustered {one[engine]['entries']} entries")
            if one["sqlite"]["digest"] != one["postgresql"]["digest"]:
                scale.log("WARNING: the stores' stories differ")
            runs.append(one)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    days = (populated.last - populated.first).total_seconds() / 86_400
    body = report(args, state, args.size, days, runs)
    print(body)
    if not args.no_doc:
        write_section(SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
