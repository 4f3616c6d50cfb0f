"""Fetch benchmark: one newsdesk round over 2,000 feeds, against feedparser and rss2email.

What it measures, in one invocation (``python bench/fetch.py``, defaults shown):

1. **Corpus** - ``--feeds 2000`` distinct RSS 2.0 feeds of ``--entries 50`` items each,
   generated deterministically from ``--seed``: a news site's channel, items with a title,
   a tracking-tagged link, a GUID, a pubDate, an author, categories and an HTML
   description of a few hundred bytes with links (some relative) and images. They are
   served from ``--hosts 50`` loopback addresses, 127.0.1.1 ... 127.0.1.N (Linux routes
   all of 127/8 to lo), one ``tests/feedserver.py`` ``FeedServer`` each (on the same port
   when it is free everywhere), all serving the same directory; feed i is on host
   i % N, so 2,000 feeds are 40 per host, as a real round's feeds are spread over many
   origins. The servers run in a **separate process** (their threads never share
   newsdesk's GIL, and newsdesk's memory and CPU are measured alone), with ``--latency
   0.05 0.15`` seconds added to every response (uniform, seeded) and ETag/Last-Modified
   on every file, so a second round gets 304s. The process reports, over all its
   servers, the requests, the connections (total and the most on one host), the peak
   number of requests in flight (one shared gauge), the status codes and its own CPU
   time per phase.
2. **newsdesk cold** - a fresh SQLite store in a temp dir, ``[fetch]
   allow_private_networks = true``, ``concurrency = --concurrency`` (default 50) and
   the default ``per_host`` (2), as in a real round; all feeds added with ``newsdesk
   feeds import`` (not timed), then ``python -m newsdesk --config X fetch --all`` is
   timed as a subprocess: the real path, interpreter start included. ``--hosts 1`` is
   the single-host mode, for comparison: every feed on 127.0.1.1, and ``per_host``
   raised to the concurrency (the default would fetch two feeds at a time).
3. **newsdesk warm** - the same command on the same store; the server answers 304.
4. **Parse-bound limit** - feedparser 6's single-core entries/s on a sample of the same
   documents (``feedparser.parse(BytesIO(body))``: default sanitiser and relative-URI
   resolution on, the reference the issue names; and with ``sanitize_html=False,
   resolve_relative_uris=False``), per CPU-second of this process (``process_time``, so
   other people's load does not lower it), times the number of cores
   (``os.cpu_count()``). newsdesk's own ``parse_feed`` is timed on the same sample.
5. **rss2email 3.14** - installed from PyPI into ``bench/.venv-r2e`` (created when
   missing), a fresh config and state per run (cold, like ours), the first
   ``--rss2email-feeds 200`` feeds imported with ``r2e opmlimport`` (not timed), mail
   delivered to a local maildir (``email-protocol = maildir``), and ``r2e run`` timed.
   Every entry of every feed is new, so it mails each one (``digest = False``, its
   default: one mail per entry; ``trust-guid = True``, its default: our GUIDs are
   stable). The mails written are counted, and must equal feeds x entries.

Each of newsdesk cold, newsdesk warm, the parse limit and rss2email is repeated
``--runs 3`` times and the MEDIANS are reported. Compared are rates (feeds/s,
entries/s), never extrapolated totals.

Peak memory: while a measured command runs, a sampler thread reads ``/proc`` every
50 ms for the command's whole process tree (newsdesk, its forkserver and parser
workers). The peak RSS reported is the SUM over those processes of each one's own peak
RSS (``VmHWM``), which over-counts pages they share and so is an upper bound; the
highest sampled simultaneous PSS total is reported beside it, and ``wait4``'s
``ru_maxrss`` (the largest single process) as a cross-check. CPU seconds come from
``wait4`` (the whole tree) and from ``/proc/PID/stat`` (split: main process vs helpers).

The machine is shared: before each timed phase the bench waits (``--quiet-wait 20`` s
at most) for other processes to go quiet, measures the cores they kept busy anyway
(``/proc/stat`` minus the bench's own CPU), and also reports newsdesk's entries per
CPU-second, which no other load changes.

Diagnosis (``--no-diagnose`` to skip): one extra cold round, not in the medians, runs
``jobs.fetch_feeds`` in a child with the store's methods (``Store`` and its
repositories), httpcore's pool bookkeeping and the event loop's lag timed (wall and CPU
per call, and on which thread), to show where the main process's time goes.

Finally it prints a table and writes the "Fetch" section of docs/benchmarks.md
(``--no-doc`` to skip). A ``--hosts 1`` run only fills in that section's single-host
comparison line (so run it after the default run). A default run takes 6-8 minutes on
2 idle cores.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import html
import io
import json
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import benchdoc

REPO = Path(__file__).resolve().parent.parent
R2E_VENV = REPO / "bench" / ".venv-r2e"
R2E_VERSION = "3.14"
DOC = REPO / "docs" / "benchmarks.md"
SECTION = "## Fetch"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SUMMARY_RE = re.compile(
    r"(\d+) feeds: (\d+) ok, (\d+) not modified, (\d+) failed; (\d+) new entries"
)


# -- corpus ------------------------------------------------------------------------------


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(sep))


ADJECTIVES = _words(
    "new global quiet rising early late record bold open secret major minor rapid "
    "local central digital green urgent rare sharp strong weak"
)
NOUNS = _words(
    "chipmaker regulator startup council market union court model network budget "
    "election summit strike satellite vaccine pipeline harbour airline bank reactor "
    "platform robot archive festival library"
)
VERBS = _words(
    "unveils delays rejects approves expands cuts doubles questions pauses revives "
    "tests blocks funds launches shelves"
)
GERMAN = _words(
    "Regierung Bundestag Wirtschaft Forschung Energie Markt Haushalt Streik Gericht "
    "Bahn Klima Schule Rente Daten Sicherheit Zukunft Wahl Stadt Bericht Plan"
)
GERMAN_VERBS = _words("plant kippt prüft stoppt erweitert fordert senkt verschiebt")
WORDS = _words(
    "the a of to in and for on with as by at from that which after before while "
    "analysts officials said reported according people familiar matter week year "
    "quarter percent billion million data users customers government company plans "
    "rules access security growth cost price talks deal report research team city"
)
SECTIONS = _words("world business tech science politics culture climate health sport")
AUTHORS = _words(
    "Ana Ruiz|Ben Okafor|Chen Wei|Dana Kowalski|Eva Lindqvist|Farid Haddad|Greta Moser|"
    "Hiro Tanaka|Ines Duarte|Jonas Weber|Kira Novak|Liam O'Brien",
    "|",
)
BASE_DATE = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def _sentence(rng: random.Random, german: bool) -> str:
    words = [rng.choice(GERMAN if german and rng.random() < 0.5 else WORDS) for _ in range(12)]
    words = words[: rng.randint(8, 12)]
    return words[0].capitalize() + " " + " ".join(words[1:]) + "."


def _headline(rng: random.Random, german: bool) -> str:
    if german:
        return f"{rng.choice(GERMAN)} {rng.choice(GERMAN_VERBS)} {rng.choice(GERMAN)}-Pläne"
    adj, noun, verb = rng.choice(ADJECTIVES), rng.choice(NOUNS), rng.choice(VERBS)
    return f"{adj.capitalize()} {noun} {verb} {rng.choice(NOUNS)} {rng.choice(NOUNS)} plan"


def _description(rng: random.Random, domain: str, german: bool) -> str:
    """A few hundred bytes of a news site's HTML teaser: links, an image, emphasis."""
    parts = [
        f'<p>{_sentence(rng, german)} <a href="https://{domain}/{rng.choice(SECTIONS)}/'
        f'{rng.randrange(10**6)}">{rng.choice(NOUNS)}</a> {_sentence(rng, german)}</p>'
    ]
    if rng.random() < 0.6:
        parts.append(
            f'<p><img src="https://cdn.{domain}/img/2026/11/{rng.getrandbits(48):012x}.jpg" '
            f'alt="{rng.choice(NOUNS)}" width="640" height="360" /></p>'
        )
    parts.append(f"<p>{_sentence(rng, german)} <strong>{rng.choice(NOUNS)}</strong></p>")
    if rng.random() < 0.3:
        tag = rng.choice(SECTIONS)
        parts.append(f'<p><a href="/tags/{tag}">More on {tag}</a></p>')
    if rng.random() < 0.2:  # a feedburner-style tracking pixel
        parts.append(
            f'<img src="https://feeds.feedburner.com/~r/{domain}/~4/{rng.getrandbits(32):x}" '
            'height="1" width="1" alt="" />'
        )
    return "".join(parts)


def render_feed(index: int, entries: int, seed: int) -> bytes:
    """One RSS 2.0 document; the same (index, entries, seed) always gives the same bytes."""
    rng = random.Random(f"{seed}-{index}")
    german = rng.random() < 0.25
    name = f"{rng.choice(ADJECTIVES).capitalize()} {rng.choice(NOUNS).capitalize()} {index}"
    domain = f"www.{name.lower().replace(' ', '-')}.example"
    cdata = rng.random() < 0.4
    when = BASE_DATE - timedelta(minutes=rng.randrange(120))
    items = []
    for n in range(entries):
        title = _headline(rng, german)
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        section = rng.choice(SECTIONS)
        link = f"https://{domain}/{section}/2026/11/{slug}-{index}{n:03d}.html"
        permalink = rng.random() < 0.5
        guid = link if permalink else f"urn:uuid:{rng.getrandbits(128):032x}"
        body = _description(rng, domain, german)
        described = f"<![CDATA[{body}]]>" if cdata else html.escape(body, quote=False)
        items.append(
            "<item>"
            f"<title>{html.escape(title, quote=False)}</title>"
            f"<link>{link}?utm_source=rss&amp;utm_medium=feed&amp;utm_campaign={section}</link>"
            f'<guid isPermaLink="{"true" if permalink else "false"}">{guid}</guid>'
            f"<pubDate>{format_datetime(when)}</pubDate>"
            f"<dc:creator>{html.escape(rng.choice(AUTHORS), quote=False)}</dc:creator>"
            f"<category>{section}</category>"
            f"<description>{described}</description>"
            "</item>\n"
        )
        when -= timedelta(minutes=rng.randrange(5, 240))
    language = "de-de" if german else "en-us"
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:atom="http://www.w3.org/2005/Atom">\n<channel>\n'
        f"<title>{name}</title>\n<link>https://{domain}/</link>\n"
        f"<description>News from {name}</description>\n<language>{language}</language>\n"
        f"<lastBuildDate>{format_datetime(BASE_DATE)}</lastBuildDate>\n<ttl>15</ttl>\n"
        f'<atom:link href="https://{domain}/feed.rss" rel="self" type="application/rss+xml"/>\n'
        f"<image><url>https://cdn.{domain}/logo.png</url><title>{name}</title>"
        f"<link>https://{domain}/</link></image>\n"
    )
    return (head + "".join(items) + "</channel>\n</rss>\n").encode()


def feed_path(index: int) -> str:
    return f"feeds/{index:05d}.rss"


def generate_corpus(root: Path, feeds: int, entries: int, seed: int) -> int:
    """Write the feeds under ``root``; return the total size in bytes."""
    (root / "feeds").mkdir(parents=True, exist_ok=True)
    total = 0
    for index in range(feeds):
        body = render_feed(index, entries, seed)
        (root / feed_path(index)).write_bytes(body)
        total += len(body)
    return total


def write_opml(path: Path, urls: Sequence[str]) -> None:
    outlines = "".join(
        f'<outline type="rss" text={quoteattr(f"feed {n}")} xmlUrl={quoteattr(url)}/>\n'
        for n, url in enumerate(urls)
    )
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0"><head><title>bench'
        f"</title></head><body>\n{outlines}</body></opml>\n",
        encoding="utf-8",
    )


# -- the feed server, in its own process -------------------------------------------------


def host_address(n: int) -> str:
    """The loopback address of bench host ``n`` (0-based): 127.0.1.1, 127.0.1.2, ..."""
    return f"127.0.1.{n + 1}"


def serve(directory: Path, latency: tuple[float, float], seed: int, hosts: int) -> None:
    """Child process: serve ``directory`` from ``hosts`` loopback addresses.

    One FeedServer per address (127.0.1.1 ... 127.0.1.N; Linux routes all of 127/8 to
    lo), all on the same port when it is free on every address, sharing one in-flight
    gauge and one status counter. Answers "reset"/"stats"/"quit" on stdin.
    """
    sys.path.insert(0, str(REPO / "tests"))
    from feedserver import (  # type: ignore[import-not-found]
        FeedServer,
        InFlightGauge,
        Request,
        file_reply,
    )

    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    gauge = InFlightGauge()

    def counted(path: Path) -> Callable[[Request], Any]:
        def reply(request: Request) -> Any:
            answer = file_reply(path, request)
            with lock:
                statuses[answer.status] += 1
            return answer

        return reply

    # Routes (not only ``directory``) so that the status of every answer is counted; every
    # host knows every path (a feed's URL names its host, so only that one is asked).
    routes = {
        "/" + path.relative_to(directory).as_posix(): counted(path)
        for path in sorted((directory / "feeds").iterdir())
    }
    servers: list[Any] = []
    with contextlib.ExitStack() as stack:
        port = 0
        for n in range(hosts):
            server = None
            for candidate in dict.fromkeys((port, 0)):  # the shared port, else any free one
                server = FeedServer(
                    host_address(n),
                    candidate,
                    latency=latency,
                    directory=directory,
                    gauge=gauge,
                    seed=seed + n,
                )
                for route, reply in routes.items():
                    server.route(route, reply)
                try:
                    stack.enter_context(server)
                    break
                except OSError:
                    if candidate == 0:
                        raise
            assert server is not None
            port = port or server.port
            servers.append(server)
        print(json.dumps({"bases": [server.base_url for server in servers]}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "reset":
                for server in servers:
                    server.clear()  # also resets the shared gauge
                with lock:
                    statuses.clear()
            elif command == "stats":
                times = os.times()
                with lock:
                    counts = {str(k): v for k, v in sorted(statuses.items())}
                logs = [server.requests for server in servers]
                # Connections by (host, client address): the client side of every
                # connection is 127.0.0.1, and one of its ports may serve several hosts.
                per_host = [len({r.client for r in log}) for log in logs]
                stats = {
                    "requests": sum(len(log) for log in logs),
                    "connections": sum(per_host),
                    "max_connections_per_host": max(per_host, default=0),
                    "statuses": counts,
                    "peak_in_flight": gauge.peak,
                    "cpu_s": times.user + times.system,
                    "threads": threading.active_count(),
                }
                print(json.dumps(stats), flush=True)
            elif command == "quit":
                break


class ServerProcess:
    """The feed server child and its little stdin/stdout control protocol."""

    def __init__(
        self, directory: Path, latency: tuple[float, float], seed: int, hosts: int
    ) -> None:
        command = [sys.executable, __file__, "--serve", str(directory), "--hosts", str(hosts)]
        command += ["--latency", str(latency[0]), str(latency[1]), "--seed", str(seed)]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.bases: list[str] = json.loads(self._readline())["bases"]
        self._mark: dict[str, Any] = {}
        self._since = 0.0

    def _readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the feed server process died")
        return line

    def _ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self._readline()) if command == "stats" else {}

    def reset(self) -> None:
        """Start a phase: forget requests, statuses and the in-flight peak."""
        self._ask("reset")
        self._mark = self._ask("stats")
        self._since = time.perf_counter()

    def phase(self) -> dict[str, Any]:
        """What the server did since :meth:`reset`, with its CPU share of the phase."""
        stats = self._ask("stats")
        wall = time.perf_counter() - self._since
        stats["cpu_s"] -= self._mark["cpu_s"]
        stats["cpu_share"] = stats["cpu_s"] / wall if wall > 0 else 0.0
        return stats

    def url(self, index: int) -> str:
        """Feed ``index``'s URL: it lives on host ``index % hosts``."""
        return f"{self.bases[index % len(self.bases)]}/{feed_path(index)}"

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._ask("quit")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- measuring a command's process tree ---------------------------------------------------


@dataclass
class ProcInfo:
    ppid: int
    cmdline: str
    hwm_kb: int = 0
    cpu_s: float = 0.0


class TreeSampler(threading.Thread):
    """Samples /proc for a process and all its descendants until stopped."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.root = pid
        self.interval = interval
        self.procs: dict[int, ProcInfo] = {}
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def _tree(self) -> list[int]:
        pids, queue = [], [self.root]
        while queue:
            pid = queue.pop()
            pids.append(pid)
            with contextlib.suppress(OSError):
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as handle:
                        queue.extend(int(child) for child in handle.read().split())
        return pids

    def roles(self) -> list[tuple[str, float, float]]:
        """Each process seen, named by its place in the tree: (role, peak RSS MB, CPU s)."""
        forkservers = {
            pid for pid, p in self.procs.items() if "forkserver" in p.cmdline and pid != self.root
        }
        named = []
        for pid, p in sorted(self.procs.items()):
            if pid == self.root:
                role = "main"
            elif p.ppid in forkservers:
                role = "parser worker"
            elif pid in forkservers:
                role = "forkserver"
            elif "resource_tracker" in p.cmdline:
                role = "resource tracker"
            else:
                role = Path(p.cmdline.split(" ", 1)[0]).name or "?"
            if p.hwm_kb:  # else never seen alive (a zombie, or gone before the first read)
                named.append((role, p.hwm_kb / 1024, p.cpu_s))
        return named

    def sample(self) -> None:
        rss_total = pss_total = 0
        for pid in self._tree():
            try:
                with open(f"/proc/{pid}/status") as handle:
                    status = dict(
                        line.split(":", 1) for line in handle.read().splitlines() if ":" in line
                    )
                with open(f"/proc/{pid}/stat") as handle:
                    stat = handle.read().rsplit(")", 1)[1].split()
                pss = 0
                if self.samples % 10 == 0:  # smaps_rollup walks page tables: costly
                    with open(f"/proc/{pid}/smaps_rollup") as handle:
                        pss = next(
                            (int(ln.split()[1]) for ln in handle if ln.startswith("Pss:")), 0
                        )
                info = self.procs.get(pid)
                if info is None:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
                    info = self.procs[pid] = ProcInfo(ppid=int(stat[1]), cmdline=cmdline)
            except (OSError, ValueError, IndexError):
                continue  # exited between listing and reading
            if "VmRSS" not in status:
                continue  # a zombie
            rss_total += int(status["VmRSS"].split()[0])
            pss_total += pss
            info.hwm_kb = max(info.hwm_kb, int(status["VmHWM"].split()[0]))
            info.cpu_s = (int(stat[11]) + int(stat[12])) / CLOCK_TICKS
        self.peak_rss_kb = max(self.peak_rss_kb, rss_total)
        self.peak_pss_kb = max(self.peak_pss_kb, pss_total)
        self.samples += 1


@dataclass
class Measured:
    """One timed command: wall time, CPU and memory of its whole process tree."""

    returncode: int
    wall_s: float
    cpu_s: float
    main_cpu_s: float
    helper_cpu_s: float
    max_single_rss_mb: float
    sum_hwm_mb: float
    peak_pss_mb: float
    processes: int
    sampler_cpu_s: float
    machine_busy_s: float
    """CPU-seconds the whole machine spent busy meanwhile (``/proc/stat``), all processes."""
    stdout: str
    stderr: str
    roles: list[tuple[str, float, float]] = field(default_factory=list)
    """(role, peak RSS MB, CPU s) of every process seen in the tree."""

    def roles_line(self) -> str:
        return ", ".join(f"{role} {mb:.0f} MB/{cpu:.1f} s" for role, mb, cpu in self.roles)


def machine_busy() -> float:
    """CPU-seconds the machine has been busy since boot, all cores (``/proc/stat``)."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is inside user)
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICKS


def wait_for_quiet(patience: float, limit: float = 0.3) -> float:
    """Wait up to ``patience`` s until the machine is < ``limit`` cores busy; the last load.

    The bench's own processes are idle here, so what keeps cores busy is someone else's.
    """
    deadline = time.monotonic() + patience
    while True:
        before = machine_busy()
        time.sleep(1.0)
        load = machine_busy() - before
        if load < limit or time.monotonic() >= deadline:
            return load


def run_measured(
    command: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None
) -> Measured:
    """Run ``command``, sampling its process tree; CPU from wait4 (children included)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        own_before = time.process_time()
        busy_before = machine_busy()
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        sampler.stop()
        busy = machine_busy() - busy_before
        proc.returncode = os.waitstatus_to_exitcode(status)
        own = time.process_time() - own_before
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    # The forkserver outlives newsdesk and is reaped by init, so wait4 misses the parser
    # workers' CPU; /proc (last sample of each process) has it.
    main = sampler.procs.get(proc.pid)
    main_cpu = main.cpu_s if main else 0.0
    helper_cpu = sum(p.cpu_s for pid, p in sampler.procs.items() if pid != proc.pid)
    total_cpu = max(usage.ru_utime + usage.ru_stime, main_cpu + helper_cpu)
    return Measured(
        returncode=proc.returncode,
        wall_s=wall,
        cpu_s=total_cpu,
        main_cpu_s=main_cpu,
        helper_cpu_s=helper_cpu,
        max_single_rss_mb=usage.ru_maxrss / 1024,
        sum_hwm_mb=sum(p.hwm_kb for p in sampler.procs.values()) / 1024,
        peak_pss_mb=sampler.peak_pss_kb / 1024,
        processes=sum(1 for p in sampler.procs.values() if p.hwm_kb),
        sampler_cpu_s=own,
        machine_busy_s=busy,
        stdout=stdout,
        stderr=stderr,
        roles=sampler.roles(),
    )


# -- newsdesk ----------------------------------------------------------------------------

NEWSDESK_CONFIG = """\
# Written by bench/fetch.py.
[store]
url = "sqlite:///newsdesk.db"

[fetch]
allow_private_networks = true   # the bench hosts are loopback addresses
concurrency = {concurrency}
{extra}
[log]
level = "warning"
"""


def _fetch_setting(args: argparse.Namespace, key: str) -> str | None:
    """The value given with ``--fetch-setting key=...``, if any."""
    for setting in args.fetch_setting:
        name, _, value = setting.partition("=")
        if name.strip() == key:
            return value.split("#", 1)[0].strip()
    return None


def per_host(args: argparse.Namespace) -> int:
    """newsdesk's ``per_host`` in the bench config.

    The default (2) with several hosts, as in a real round; raised to the concurrency
    (at most 100, the setting's maximum) when every feed is on one host.
    """
    given = _fetch_setting(args, "per_host")
    if given:
        return int(given)
    if args.hosts == 1:
        return min(args.concurrency, 100)
    from newsdesk.models import FetchSettings

    return FetchSettings().per_host


def newsdesk(*args: str) -> list[str]:
    return [sys.executable, "-m", "newsdesk", *args]


def prepare_newsdesk(workdir: Path, opml: Path, args: argparse.Namespace) -> Path:
    """A fresh config + store in ``workdir`` with every feed of ``opml``; the config path."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    config = workdir / "newsdesk.toml"
    extra = "".join(f"{line}\n" for line in args.fetch_setting)
    if args.hosts == 1 and not _fetch_setting(args, "per_host"):
        # Every feed on one host: the default per_host would serialise the round.
        extra = f"per_host = {per_host(args)}   # single-host mode (--hosts 1)\n" + extra
    config.write_text(NEWSDESK_CONFIG.format(concurrency=args.concurrency, extra=extra))
    done = subprocess.run(
        newsdesk("--config", str(config), "feeds", "import", str(opml)),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"newsdesk feeds import failed:\n{done.stderr}")
    return config


def other_load(measured: Measured, served: dict[str, Any]) -> float:
    """Cores kept busy by processes outside the bench during ``measured`` (noise)."""
    ours = measured.cpu_s + measured.sampler_cpu_s + served["cpu_s"]
    return max(0.0, measured.machine_busy_s - ours) / measured.wall_s


def newsdesk_round(config: Path, server: ServerProcess, feeds: int) -> dict[str, Any]:
    server.reset()
    measured = run_measured(newsdesk("--config", str(config), "fetch", "--all"), cwd=config.parent)
    served = server.phase()
    if measured.returncode != 0:
        raise SystemExit(f"newsdesk fetch failed ({measured.returncode}):\n{measured.stderr}")
    match = SUMMARY_RE.search(measured.stdout)
    if match is None:
        raise SystemExit(f"no summary line in newsdesk's output:\n{measured.stdout}")
    total, ok, not_modified, failed, new = (int(g) for g in match.groups())
    with contextlib.closing(sqlite3.connect(config.parent / "newsdesk.db")) as db:
        stored = db.execute("select count(*) from entries").fetchone()[0]
    problems = []
    if total != feeds or failed:
        problems.append(f"{failed} of {total} feeds failed (expected {feeds} feeds)")
    if measured.stderr.strip():
        problems.append("stderr: " + measured.stderr.strip().splitlines()[-1][:200])
    return {
        "measured": measured,
        "server": served,
        "ok": ok,
        "not_modified": not_modified,
        "failed": failed,
        "new_entries": new,
        "stored_entries": stored,
        "other_load": other_load(measured, served),
        "feeds_per_s": total / measured.wall_s,
        "entries_per_s": new / measured.wall_s,
        "problems": problems,
    }


# -- rss2email ---------------------------------------------------------------------------


def r2e_command() -> Path:
    """``r2e`` from the isolated venv, which is created and filled when missing."""
    r2e = R2E_VENV / "bin" / "r2e"
    python = R2E_VENV / "bin" / "python"
    if r2e.exists() and _r2e_version(python) == R2E_VERSION:
        return r2e
    print(f"installing rss2email {R2E_VERSION} into {R2E_VENV} ...", flush=True)
    subprocess.run(["python3", "-m", "venv", "--clear", str(R2E_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"rss2email=={R2E_VERSION}"], check=True
    )
    return r2e


def _r2e_version(python: Path) -> str | None:
    done = subprocess.run(
        [str(python), "-c", "import rss2email; print(rss2email.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def server_urls_in(opml: Path) -> list[str]:
    return re.findall(r'xmlUrl="([^"]+)"', opml.read_text(encoding="utf-8"))


def rss2email_round(
    r2e: Path, workdir: Path, opml: Path, server: ServerProcess, entries: int
) -> dict[str, Any]:
    """A cold ``r2e run``: fresh config and state, every entry new, mail to a maildir."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    config, data, maildir = workdir / "r2e.cfg", workdir / "r2e.json", workdir / "Maildir"
    base = [str(r2e), "-c", str(config), "-d", str(data)]
    subprocess.run([*base, "new", "bench@example.invalid"], check=True, capture_output=True)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config)
    parser["DEFAULT"].update(
        {
            "from": "r2e@example.invalid",
            "email-protocol": "maildir",
            "maildir-path": str(maildir),
            "maildir-mailbox": "INBOX",
            "digest": "False",  # its default: one mail per entry
            "trust-guid": "True",  # its default; the bench GUIDs are stable
        }
    )
    with config.open("w") as handle:
        parser.write(handle)
    maildir.mkdir()  # rss2email creates the mailbox folder inside, not its parents
    subprocess.run([*base, "opmlimport", str(opml)], check=True, capture_output=True)
    server.reset()
    measured = run_measured([*base, "run"], cwd=workdir)
    served = server.phase()
    inbox = maildir / "INBOX"
    mails = sum(len(os.listdir(inbox / sub)) for sub in ("new", "cur") if (inbox / sub).is_dir())
    state = json.loads(data.read_text())
    problems = []
    if measured.returncode != 0:
        problems.append(f"r2e run exited {measured.returncode}")
    # rss2email logs every mail at INFO on stderr; its failures are WARNING/ERROR lines.
    bad = [
        ln
        for ln in measured.stderr.splitlines()
        if re.search(r"\[(WARNING|ERROR|CRITICAL)\]|Traceback", ln)
    ]
    problems += [f"stderr: {ln[:200]}" for ln in bad[:5]]
    feeds = len(server_urls_in(opml))
    if mails != feeds * entries:
        problems.append(f"{mails} mails written, expected {feeds * entries}")
    with_state = sum(1 for f in state.get("feeds", []) if f.get("seen"))
    if with_state != feeds or served["statuses"].get("200", 0) != feeds:
        problems.append(f"{with_state} feeds read, {served['statuses']} served; {feeds} expected")
    return {
        "measured": measured,
        "server": served,
        "other_load": other_load(measured, served),
        "mails": mails,
        "feeds_with_state": with_state,
        "problems": problems,
    }


# -- parse-bound limit -------------------------------------------------------------------


def parse_rates(docs: Sequence[bytes], url: str) -> dict[str, float]:
    """Single-core entries/s (per CPU-second) of feedparser, two ways, and parse_feed."""
    import feedparser

    from newsdesk.parse import parse_feed

    variants: dict[str, Callable[[bytes], int]] = {
        "feedparser_default": lambda body: len(feedparser.parse(io.BytesIO(body)).entries),
        "feedparser_nosanitize": lambda body: len(
            feedparser.parse(
                io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False
            ).entries
        ),
        "newsdesk_parse_feed": lambda body: len(
            parse_feed(body, url=url, headers={"content-type": "application/rss+xml"}).entries
        ),
    }
    rates = {}
    for name, parse in variants.items():
        parse(docs[0])  # warm-up: lazy imports, regex compilation
        start, cpu, entries = time.perf_counter(), time.process_time(), 0
        for body in docs:
            entries += parse(body)
        # Per CPU-second: what one core does, whoever else uses the machine meanwhile.
        rates[name] = entries / (time.process_time() - cpu)
        rates[name + "_wall"] = entries / (time.perf_counter() - start)
    return rates


# -- diagnosis: where the main process's time goes -------------------------------------


def diagnose_round(config_path: Path) -> dict[str, Any]:
    """Child process: one cold round through ``jobs.fetch_feeds``, instrumented.

    Times every public method of the store's feed and entry repositories (synchronous
    calls: when made on the event loop's thread, the loop is blocked that long), httpcore's
    connection-pool bookkeeping, and the event loop's lag (a 5 ms ticker).
    """
    import asyncio

    import httpcore

    from newsdesk import jobs
    from newsdesk.config import load_config

    loop_thread = threading.get_ident()
    calls: dict[str, list[float]] = {}

    def timed(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name, None)
        if not callable(original):
            return

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                where = "" if threading.get_ident() == loop_thread else " (off the loop)"
                entry = calls.setdefault(label + where, [0, 0.0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - start
                entry[2] += time.thread_time() - cpu

        setattr(owner, name, wrapper)

    config = load_config(config_path)
    store = jobs.open_app_store(config)
    feeds = jobs.select_feeds(store, now=jobs.utcnow(), all_feeds=True)
    for repo in (store, store.entries, store.feeds):
        cls = type(repo)
        for name, value in list(vars(cls).items()):
            if not name.startswith("_") and callable(value):  # not properties
                timed(cls, name, f"store {cls.__name__}.{name}")
    pool = httpcore.AsyncConnectionPool
    timed(pool, "_assign_requests_to_connections", "httpcore pool: assign requests")
    http11 = getattr(httpcore, "AsyncHTTP11Connection", None)
    if http11 is not None:
        timed(http11, "has_expired", "httpcore pool: has_expired checks (within assign)")

    lags: list[float] = []
    inner = jobs.refresh_feeds

    async def with_ticker(*args: Any, **kwargs: Any) -> Any:
        done = asyncio.Event()

        async def tick() -> None:
            while not done.is_set():
                start = time.perf_counter()
                await asyncio.sleep(0.005)
                lags.append(time.perf_counter() - start - 0.005)

        ticker = asyncio.create_task(tick())
        try:
            return await inner(*args, **kwargs)
        finally:
            done.set()
            await ticker

    jobs.refresh_feeds = with_ticker  # type: ignore[assignment]
    start, thread_cpu, cpu = time.perf_counter(), time.thread_time(), time.process_time()
    summary = jobs.fetch_feeds(config, store, feeds)
    wall = time.perf_counter() - start
    lags.sort()
    return {
        "feeds": summary.feeds,
        "new_entries": summary.new_entries,
        "wall_s": wall,
        "loop_thread_cpu_s": time.thread_time() - thread_cpu,
        "process_cpu_s": time.process_time() - cpu,
        "calls": calls,
        "lag_p50_ms": lags[len(lags) // 2] * 1000 if lags else 0.0,
        "lag_p99_ms": lags[int(len(lags) * 0.99)] * 1000 if lags else 0.0,
        "lag_max_ms": lags[-1] * 1000 if lags else 0.0,
    }


def diagnose(config: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--diagnose-round", str(config)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def diagnosis_lines(d: dict[str, Any]) -> list[str]:
    if "error" in d:
        return [f"diagnosis failed: {d['error']}"]
    feeds = max(1, d["feeds"])
    lines = [
        f"round {d['wall_s']:.1f} s for {d['feeds']} feeds = {d['wall_s'] / feeds * 1000:.1f} "
        f"ms/feed; event-loop thread on CPU {d['loop_thread_cpu_s']:.1f} s, main process "
        f"(all threads) {d['process_cpu_s']:.1f} s; loop lag p50 {d['lag_p50_ms']:.0f} ms, "
        f"p99 {d['lag_p99_ms']:.0f} ms, max {d['lag_max_ms']:.0f} ms",
    ]
    for label, (count, seconds, cpu) in sorted(d["calls"].items(), key=lambda kv: -kv[1][1]):
        if seconds >= 0.1:
            lines.append(
                f"{label}: {count:,.0f} calls, {seconds:.1f} s ({cpu:.1f} s of it on CPU) = "
                f"{seconds / feeds * 1000:.2f} ms/feed, {seconds / count * 1000:.3f} ms/call"
            )
    return lines


# -- reporting ---------------------------------------------------------------------------


def median(rows: Sequence[dict[str, Any]], *path: str) -> float:
    values = []
    for row in rows:
        value: Any = row
        for key in path:
            value = getattr(value, key) if isinstance(value, Measured) else value[key]
        values.append(float(value))
    return statistics.median(values)


@dataclass
class Report:
    args: argparse.Namespace
    corpus_bytes: int
    cold: list[dict[str, Any]] = field(default_factory=list)
    warm: list[dict[str, Any]] = field(default_factory=list)
    r2e: list[dict[str, Any]] = field(default_factory=list)
    parse: list[dict[str, float]] = field(default_factory=list)
    diagnosis: dict[str, Any] | None = None
    code: str = ""

    def summary(self) -> dict[str, float]:
        cores = os.cpu_count() or 1
        s = {
            "cold_s": median(self.cold, "measured", "wall_s"),
            "cold_feeds_s": median(self.cold, "feeds_per_s"),
            "cold_entries_s": median(self.cold, "entries_per_s"),
            "cold_rss_mb": median(self.cold, "measured", "sum_hwm_mb"),
            "cold_pss_mb": median(self.cold, "measured", "peak_pss_mb"),
            "cold_single_mb": median(self.cold, "measured", "max_single_rss_mb"),
            "cold_cpu_s": median(self.cold, "measured", "cpu_s"),
            "cold_main_cpu_s": median(self.cold, "measured", "main_cpu_s"),
            "cold_helper_cpu_s": median(self.cold, "measured", "helper_cpu_s"),
            "cold_server_share": median(self.cold, "server", "cpu_share"),
            "cold_peak_in_flight": median(self.cold, "server", "peak_in_flight"),
            "cold_others": median(self.cold, "other_load"),
            "warm_others": median(self.warm, "other_load"),
            "warm_s": median(self.warm, "measured", "wall_s"),
            "warm_feeds_s": median(self.warm, "feeds_per_s"),
            "warm_rss_mb": median(self.warm, "measured", "sum_hwm_mb"),
            "warm_cpu_s": median(self.warm, "measured", "cpu_s"),
            "warm_main_cpu_s": median(self.warm, "measured", "main_cpu_s"),
            "warm_server_share": median(self.warm, "server", "cpu_share"),
            "warm_peak_in_flight": median(self.warm, "server", "peak_in_flight"),
            "warm_connections": median(self.warm, "server", "connections"),
            "cold_connections": median(self.cold, "server", "connections"),
            "cold_max_connections_per_host": median(
                self.cold, "server", "max_connections_per_host"
            ),
            "fp_default": median(self.parse, "feedparser_default"),
            "fp_nosanitize": median(self.parse, "feedparser_nosanitize"),
            "nd_parse": median(self.parse, "newsdesk_parse_feed"),
            "cores": cores,
        }
        s["cold_main_rss_mb"] = statistics.median(
            max((mb for role, mb, _ in r["measured"].roles if role == "main"), default=0.0)
            for r in self.cold
        )
        s["cold_worker_rss_mb"] = statistics.median(
            max(
                (mb for role, mb, _ in r["measured"].roles if role == "parser worker"),
                default=0.0,
            )
            for r in self.cold
        )
        s["cold_entries_per_cpu_s"] = statistics.median(
            r["new_entries"] / r["measured"].cpu_s for r in self.cold
        )
        s["cpu_vs_limit"] = s["cold_entries_per_cpu_s"] / s["fp_default"]
        s["limit"] = s["fp_default"] * cores
        s["limit_nosanitize"] = s["fp_nosanitize"] * cores
        s["vs_limit"] = s["cold_entries_s"] / s["limit"]
        s["vs_limit_nosanitize"] = s["cold_entries_s"] / s["limit_nosanitize"]
        if self.r2e:
            entries = self.args.entries
            s["r2e_s"] = median(self.r2e, "measured", "wall_s")
            s["r2e_feeds_s"] = statistics.median(
                self.args.rss2email_feeds / r["measured"].wall_s for r in self.r2e
            )
            s["r2e_entries_s"] = statistics.median(
                r["mails"] / r["measured"].wall_s for r in self.r2e
            )
            s["r2e_rss_mb"] = median(self.r2e, "measured", "sum_hwm_mb")
            s["r2e_cpu_s"] = median(self.r2e, "measured", "cpu_s")
            s["r2e_mails"] = median(self.r2e, "mails")
            s["r2e_others"] = median(self.r2e, "other_load")
            s["r2e_expected_mails"] = self.args.rss2email_feeds * entries
            s["vs_r2e_feeds"] = s["cold_feeds_s"] / s["r2e_feeds_s"]
            s["vs_r2e_entries"] = s["cold_entries_s"] / s["r2e_entries_s"]
        return s

    def table(self) -> str:
        s = self.summary()
        a = self.args
        rows = [
            (
                "newsdesk cold round",
                f"{s['cold_s']:.1f} s",
                f"{s['cold_feeds_s']:.0f}",
                f"{s['cold_entries_s']:,.0f}",
                f"{s['cold_rss_mb']:.0f} MB",
            ),
            (
                "newsdesk warm round (304)",
                f"{s['warm_s']:.1f} s",
                f"{s['warm_feeds_s']:.0f}",
                "-",
                f"{s['warm_rss_mb']:.0f} MB",
            ),
        ]
        if self.r2e:
            rows.append(
                (
                    f"rss2email {R2E_VERSION} cold ({a.rss2email_feeds} feeds)",
                    f"{s['r2e_s']:.1f} s",
                    f"{s['r2e_feeds_s']:.1f}",
                    f"{s['r2e_entries_s']:,.0f}",
                    f"{s['r2e_rss_mb']:.0f} MB",
                )
            )
        rows += [
            ("feedparser default, 1 core", "-", "-", f"{s['fp_default']:,.0f}", "-"),
            ("feedparser no sanitize/resolve, 1 core", "-", "-", f"{s['fp_nosanitize']:,.0f}", "-"),
            ("newsdesk parse_feed, 1 core", "-", "-", f"{s['nd_parse']:,.0f}", "-"),
            (
                f"parse-bound limit (feedparser default x {s['cores']})",
                "-",
                "-",
                f"{s['limit']:,.0f}",
                "-",
            ),
        ]
        header = ("", "wall (median)", "feeds/s", "entries/s", "peak RSS")
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---", "--:", "--:", "--:", "--:"]) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)

    def verdicts(self) -> list[tuple[str, str, bool]]:
        s = self.summary()
        out = [
            (
                "newsdesk cold entries/s ≥ parse-bound limit / 1.5",
                f"{s['vs_limit']:.2f}× the limit (needs ≥ 0.67×)",
                s["vs_limit"] >= 1 / 1.5,
            ),
            ("warm round of all feeds < 10 s", f"{s['warm_s']:.1f} s", s["warm_s"] < 10),
            (
                "peak RSS < 400 MB (newsdesk + parser workers)",
                f"{s['cold_rss_mb']:.0f} MB",
                s["cold_rss_mb"] < 400,
            ),
        ]
        if self.r2e:
            out.insert(
                0,
                (
                    "newsdesk cold feeds/s ≥ 10× rss2email feeds/s",
                    f"{s['vs_r2e_feeds']:.1f}×",
                    s["vs_r2e_feeds"] >= 10,
                ),
            )
        return out


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores (nproc), {model}, Python {platform.python_version()}"


code_state = benchdoc.code_state


def versions() -> str:
    from importlib.metadata import version

    names = ("feedparser", "httpx", "SQLAlchemy", "nh3")
    return ", ".join(f"{n} {version(n)}" for n in names)


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces ``args`` (options left at their defaults omitted)."""
    parts = ["python bench/fetch.py"]
    defaults = {
        "feeds": 2000,
        "entries": 50,
        "hosts": 50,
        "runs": 3,
        "rss2email_feeds": 200,
        "concurrency": 50,
        "seed": 20261123,
    }
    for name, default in defaults.items():
        value = getattr(args, name)
        if value != default:
            parts.append(f"--{name.replace('_', '-')} {value}")
    if tuple(args.latency) != (0.05, 0.15):
        parts.append(f"--latency {args.latency[0]} {args.latency[1]}")
    parts += [f"--fetch-setting '{setting}'" for setting in args.fetch_setting]
    return " ".join(parts)


def per_feed_ms(d: dict[str, Any], test: Callable[[str], bool], index: int = 1) -> float:
    """Diagnosis: the calls whose label passes ``test``, summed, in ms per feed.

    ``index`` 1 sums wall time, 2 CPU time, 0 the number of calls (then: calls per feed,
    times 1,000).
    """
    return sum(v[index] for k, v in d["calls"].items() if test(k)) / max(1, d["feeds"]) * 1000


def _pool(label: str) -> bool:
    return label.startswith("httpcore pool: assign")


def reading(report: Report) -> list[str]:
    """The measured facts that say what bounds each round, one bullet each."""
    s = report.summary()
    a = report.args
    at_once = min(a.concurrency, a.hosts * per_host(a))
    network_floor = a.feeds * sum(a.latency) / 2 / at_once
    parse_floor = a.feeds * a.entries / (s["nd_parse"] * s["cores"])
    available = s["cores"] - s["cold_others"]
    used = s["cold_cpu_s"] / s["cold_s"]
    cold = (
        f"Cold: {s['cold_s']:.1f} s, against {network_floor:.1f} s for the network alone "
        f"({a.feeds:,} feeds x {sum(a.latency) / 2 * 1000:.0f} ms mean latency / {at_once} at "
        f"once) and {parse_floor:.1f} s for newsdesk's own parser ({s['nd_parse']:,.0f} "
        f"entries/s per core x {s['cores']}). It spent {s['cold_cpu_s']:.0f} CPU-s: main "
        f"process (event loop, HTTP, SQLite) {s['cold_main_cpu_s']:.0f} s = "
        f"{s['cold_main_cpu_s'] / a.feeds * 1000:.1f} ms per feed, parser workers "
        f"{s['cold_helper_cpu_s']:.0f} s. Peak RSS of the main process "
        f"{s['cold_main_rss_mb']:.0f} MB, of each parser worker "
        f"{s['cold_worker_rss_mb']:.0f} MB. "
    )
    if used >= 0.85 * available:
        cold += (
            f"It kept {used:.2f} of the {available:.2f} cores others left busy: CPU-bound, so "
            f"the rate is set by CPU per entry ({1000 / s['cold_entries_per_cpu_s']:.2f} CPU-s "
            f"per 1,000 entries = {s['cpu_vs_limit']:.2f}x feedparser's single-core rate per "
            "CPU-second, the most the ratio to the limit can be on idle cores)."
        )
    else:
        cold += (
            f"It kept only {used:.2f} of the {available:.2f} cores others left busy: cores "
            "stood idle while the one event-loop thread, which hands out fetches and parse "
            "jobs and stores every result, was busy or waiting."
        )
    lines = [cold]
    d = report.diagnosis
    if d and "error" not in d:

        def off_loop(k: str) -> bool:
            return k.startswith("store ") and "off the loop" in k

        store_on = per_feed_ms(d, lambda k: k.startswith("store ") and not off_loop(k))
        store_cpu = per_feed_ms(d, off_loop, 2) * d["feeds"] / 1000
        rest = d["process_cpu_s"] - d["loop_thread_cpu_s"] - store_cpu
        lines.append(
            f"Main process in the instrumented round ({d['wall_s']:.1f} s, "
            f"{d['process_cpu_s']:.1f} CPU-s): store calls {store_cpu:.1f} CPU-s on the "
            f"store thread, which shares the GIL with the loop ({per_feed_ms(d, off_loop):.1f} "
            f"ms per feed wall; {store_on:.1f} ms on the loop); event-loop thread "
            f"{d['loop_thread_cpu_s']:.1f} CPU-s, of which httpcore pool bookkeeping "
            f"{per_feed_ms(d, _pool, 2) * d['feeds'] / 1000:.1f} s "
            f"({per_feed_ms(d, _pool):.1f} ms per feed wall, "
            f"{per_feed_ms(d, lambda k: 'has_expired' in k, 0) / 1000:.0f} has_expired checks "
            f"per feed); other threads {rest:.1f} CPU-s. Event-loop lag p50 "
            f"{d['lag_p50_ms']:.0f} ms, p99 {d['lag_p99_ms']:.0f} ms."
        )
    reused = s["warm_connections"] < a.feeds / 2
    lines.append(
        f"Warm: {s['warm_s']:.1f} s for {s['warm_cpu_s']:.1f} CPU-s "
        f"({s['warm_main_cpu_s'] / a.feeds * 1000:.1f} ms of main-process CPU per 304), over "
        f"{s['warm_connections']:,.0f} TCP connections for {a.feeds:,} requests (cold: "
        f"{s['cold_connections']:,.0f}): "
        + (
            "connections are reused after a 304."
            if reused
            else "connections are NOT reused after a 304 (one new connection per feed)."
        )
    )
    lines.append(
        f"The feed server used {s['cold_server_share']:.0%} of a core (cold), with at most "
        f"{s['cold_peak_in_flight']:.0f} requests in flight and "
        f"{s['cold_max_connections_per_host']:.0f} connections on any one host: not the "
        f"bottleneck. Other processes kept {s['cold_others']:.2f} cores busy during the cold "
        f"rounds, {s['warm_others']:.2f} warm"
        + (f", {s['r2e_others']:.2f} during rss2email (medians)." if report.r2e else ".")
    )
    if report.r2e:
        lines.append(
            f"rss2email fetches one feed at a time ({s['r2e_cpu_s']:.0f} CPU-s in "
            f"{s['r2e_s']:.0f} s: the rest is waiting for each response in turn) and mails "
            "every entry (html2text, MIME, a maildir file) after parsing with feedparser's "
            f"default sanitiser; it wrote {s['r2e_mails']:,.0f} of "
            f"{s['r2e_expected_mails']:,} expected mails per run."
        )
    return lines


SINGLE_HOST_PREFIX = "Single host, for comparison"
SINGLE_HOST_COMMAND = "python bench/fetch.py --hosts 1 --runs 1"


def single_host_line(report: Report) -> str:
    """The comparison line a ``--hosts 1`` run puts in the section."""
    s = report.summary()
    a = report.args
    line = (
        f"{SINGLE_HOST_PREFIX} (`{command_line(a)}`: every feed on {host_address(0)}, "
        f"`per_host = {per_host(a)}`; {report.code}; "
        + (f"median of {a.runs} runs" if a.runs > 1 else "1 run")
        + "): cold "
        f"{s['cold_s']:.1f} s = {s['cold_feeds_s']:.0f} feeds/s, "
        f"{s['cold_entries_s']:,.0f} entries/s ({s['vs_limit']:.2f}x the limit), "
        f"{s['cold_cpu_s']:.0f} CPU-s (main process {s['cold_main_cpu_s']:.0f}); warm "
        f"{s['warm_s']:.1f} s ({s['warm_main_cpu_s'] / a.feeds * 1000:.1f} ms of "
        f"main-process CPU per 304); peak RSS {s['cold_rss_mb']:.0f} MB (main process "
        f"{s['cold_main_rss_mb']:.0f} MB)"
    )
    d = report.diagnosis
    if d and "error" not in d:
        line += (
            f"; httpcore pool bookkeeping {per_feed_ms(d, _pool):.1f} ms per feed "
            f"({per_feed_ms(d, lambda k: 'has_expired' in k, 0) / 1000:.0f} has_expired "
            "checks per feed) in its instrumented round"
        )
    return line + "."


def _replace_single_host_line(report: Report) -> bool:
    """Put a ``--hosts 1`` run's line in the existing section; False when there is none."""
    if not DOC.exists():
        return False
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", text, re.S | re.M)
    if match is None:
        return False
    section = match.group(0)
    line = re.search(rf"^{re.escape(SINGLE_HOST_PREFIX)}.*$", section, re.M)
    if line is None:
        return False
    section = section[: line.start()] + single_host_line(report) + section[line.end() :]
    DOC.write_text(text[: match.start()] + section + text[match.end() :], encoding="utf-8")
    return True


def write_section(report: Report) -> str:
    """Write the "Fetch" section of docs/benchmarks.md; what was written, in words.

    A ``--hosts 1`` run only fills in the single-host comparison line of an existing
    section (run it after the default run); any other run rewrites the section.
    """
    if report.args.hosts == 1 and _replace_single_host_line(report):
        return f"the single-host line of the {SECTION!r} section"
    s = report.summary()
    a = report.args
    date = subprocess.run(["date", "+%Y-%m-%d"], capture_output=True, text=True, check=True)
    if a.hosts > 1:
        hosts = (
            f"{a.hosts} loopback hosts ({host_address(0)} ... {host_address(a.hosts - 1)}, one "
            f"`FeedServer` each; feed i on host i mod {a.hosts}, {a.feeds / a.hosts:,.0f} "
            "feeds per host)"
        )
        limits = f"`per_host = {per_host(a)}` (the default, as in a real round)"
    else:
        hosts = f"one loopback host ({host_address(0)})"
        limits = f"`per_host = {per_host(a)}` (raised: every feed is on one host)"
    lines = [
        SECTION,
        "",
        f"Date: {date.stdout.strip()}. Machine: {machine()}; {versions()}. Code: "
        f"{report.code or code_state()}.",
        "",
        "```",
        command_line(a),
        *([f"{SINGLE_HOST_COMMAND}   # then: fills in the single-host line"] * (a.hosts > 1)),
        "```",
        "",
        f"- Feeds: {a.feeds:,} generated RSS 2.0 feeds x {a.entries} entries "
        f"({report.corpus_bytes / 1e6:.0f} MB, seed {a.seed}; HTML descriptions with links, "
        f"images, tracking pixels), served by `tests/feedserver.py` in its own process from "
        f"{hosts}, {a.latency[0] * 1000:.0f}-{a.latency[1] * 1000:.0f} ms latency per "
        "response, ETag/Last-Modified.",
        f"- newsdesk: fresh SQLite store, `concurrency = {a.concurrency}`, {limits}, "
        "`allow_private_networks = true`, one parser worker per core. Timed: `python -m "
        "newsdesk --config X fetch --all` (start-up included), cold (fresh store), then "
        "warm (same store, all 304).",
        f"- rss2email {R2E_VERSION} (PyPI, `bench/.venv-r2e`): fresh config and state, the "
        f"first {a.rss2email_feeds} feeds, mail to a maildir, its defaults (one mail per "
        "entry). Timed: `r2e run`. Compared by rate, not extrapolated.",
        "- Parse-bound limit: `feedparser.parse(BytesIO(body))` with its default sanitiser "
        f"over {min(a.parse_sample, a.feeds)} of the documents, entries per CPU-second of "
        f"one core, x {s['cores']} cores; measured in every run.",
        f"- Medians of {a.runs} runs. Peak RSS: the sum of each process's peak RSS over "
        "newsdesk's process tree (main, forkserver, parser workers), an upper bound; the "
        f"highest simultaneous PSS was {s['cold_pss_mb']:.0f} MB. The machine is shared: "
        "each phase waits for other load to settle, and what remained is reported below.",
        "",
        report.table(),
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    lines += [
        f"| {name} | {value} | {'yes' if ok else '**no**'} |"
        for name, value, ok in report.verdicts()
    ]
    if a.hosts > 1:
        lines += [
            "",
            f"{SINGLE_HOST_PREFIX}: not measured yet (`{SINGLE_HOST_COMMAND}` fills this in).",
        ]
    lines += ["", "Reading:", "", *(f"- {line}" for line in reading(report)), ""]
    if report.diagnosis:
        lines += [
            "Top costs in the main process, in one extra instrumented cold round (not in the "
            "medians; wall time, CPU part in brackets; 'off the loop' = on another thread):",
            "",
            *(f"- {line}" for line in diagnosis_lines(report.diagnosis)[:6]),
            "",
        ]
    assert lines[:2] == [SECTION, ""]
    benchdoc.write_section(SECTION.removeprefix("## "), "\n".join(lines[2:]))
    return f"the {SECTION!r} section"


# -- main --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time newsdesk's fetch round against feedparser and rss2email."
    )
    parser.add_argument("--feeds", type=int, default=2000, help="feeds generated (2000)")
    parser.add_argument("--entries", type=int, default=50, help="entries per feed (50)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions; medians (3)")
    parser.add_argument(
        "--rss2email-feeds", type=int, default=200, help="feeds rss2email reads (200; 0: skip)"
    )
    parser.add_argument("--concurrency", type=int, default=50, help="newsdesk concurrency (50)")
    parser.add_argument(
        "--hosts",
        type=int,
        default=50,
        help="loopback hosts serving the feeds, 127.0.1.1 ... 127.0.1.N; feed i on host "
        "i %% N (50; 1: single-host mode, per_host raised to the concurrency)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        nargs=2,
        default=(0.05, 0.15),
        metavar=("LOW", "HIGH"),
        help="seconds added to each response, uniform (0.05 0.15)",
    )
    parser.add_argument("--seed", type=int, default=20261123, help="corpus and latency seed")
    parser.add_argument(
        "--parse-sample", type=int, default=100, help="documents timed for the parse limit"
    )
    parser.add_argument(
        "--fetch-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra [fetch] line for newsdesk, TOML value (e.g. parse_workers=1); repeatable",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=20.0,
        help="seconds to wait, before each timed phase, for other processes to go quiet (20)",
    )
    parser.add_argument("--no-doc", action="store_true", help="don't write docs/benchmarks.md")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--no-diagnose",
        dest="diagnose",
        action="store_false",
        help="skip the extra instrumented cold round that shows where newsdesk's time goes",
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--diagnose-round", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.hosts <= 254:
        parser.error("--hosts must be between 1 and 254 (127.0.1.1 ... 127.0.1.254)")
    return args


@contextlib.contextmanager
def work_directory(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="newsdesk-bench-fetch-"))
    try:
        yield path
    finally:
        if keep:
            print(f"work directory kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve is not None:
        serve(args.serve, tuple(args.latency), args.seed, args.hosts)
        return 0
    if args.diagnose_round is not None:
        print(json.dumps(diagnose_round(args.diagnose_round)))
        return 0
    r2e = r2e_command() if args.rss2email_feeds else None
    started = time.perf_counter()
    code_before = code_state()
    with work_directory(args.keep) as work:
        corpus_bytes = generate_corpus(work / "site", args.feeds, args.entries, args.seed)
        log(
            f"generated {args.feeds} feeds x {args.entries} entries "
            f"({corpus_bytes / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s"
        )
        report = Report(args, corpus_bytes)
        server = ServerProcess(work / "site", tuple(args.latency), args.seed, args.hosts)
        try:
            urls = [server.url(i) for i in range(args.feeds)]
            write_opml(work / "all.opml", urls)
            write_opml(work / "r2e.opml", urls[: args.rss2email_feeds])
            for run in range(1, args.runs + 1):
                one_run(run, args, work, server, r2e, report)
            if args.diagnose:
                quiet(args, "diagnosis")
                config = prepare_newsdesk(work / "newsdesk", work / "all.opml", args)
                report.diagnosis = diagnose(config)
                log("diagnosis (one extra, instrumented cold round, not in the medians):")
                for line in diagnosis_lines(report.diagnosis):
                    log("  " + line)
        finally:
            server.close()
    report.code = code_state()
    if report.code != code_before:
        report.code = f"changed during the run, from {code_before} to {report.code}"
        log(f"WARNING: the package {report.code}; the runs measured different code")
    print()
    print(report.table())
    print()
    for name, value, ok in report.verdicts():
        print(f"{'MET   ' if ok else 'MISSED'} {name}: {value}")
    s = report.summary()
    print(
        f"CPU-normalised: {s['cold_entries_per_cpu_s']:,.0f} entries per CPU-second = "
        f"{s['cpu_vs_limit']:.2f}x feedparser's single-core rate (the most the wall-clock "
        "ratio could be on idle cores)"
    )
    print()
    for line in reading(report):
        print(f"- {line}")
    if args.hosts == 1:
        print(f"\n{single_host_line(report)}")
    if not args.no_doc:
        written = write_section(report)
        print(f"\nwrote {written} of {DOC.relative_to(REPO)}")
    print(f"total bench time {time.perf_counter() - started:.0f} s")
    return 0


def quiet(args: argparse.Namespace, label: str) -> None:
    """Give other people's processes a chance to finish before a timed phase."""
    if args.quiet_wait <= 0:
        return
    load = wait_for_quiet(args.quiet_wait)
    if load >= 0.3:
        log(f"{label}: the machine is still busy ({load:.2f} cores used by others); going on")


def one_run(
    run: int,
    args: argparse.Namespace,
    work: Path,
    server: ServerProcess,
    r2e: Path | None,
    report: Report,
) -> None:
    """One repetition: parse rates, newsdesk cold and warm, rss2email cold."""
    step = max(1, args.feeds // args.parse_sample)
    sample = [(work / "site" / feed_path(i)).read_bytes() for i in range(0, args.feeds, step)]
    quiet(args, f"run {run} parse")
    rates = parse_rates(sample[: args.parse_sample], server.url(0))
    report.parse.append(rates)
    log(
        f"run {run}: parse 1 core: feedparser {rates['feedparser_default']:,.0f} "
        f"entries/s (no sanitize {rates['feedparser_nosanitize']:,.0f}), newsdesk "
        f"{rates['newsdesk_parse_feed']:,.0f} (per CPU-second; per wall second "
        f"{rates['feedparser_default_wall']:,.0f}, {rates['feedparser_nosanitize_wall']:,.0f}, "
        f"{rates['newsdesk_parse_feed_wall']:,.0f})"
    )
    config = prepare_newsdesk(work / "newsdesk", work / "all.opml", args)
    for phase, rows in (("cold", report.cold), ("warm", report.warm)):
        quiet(args, f"run {run} {phase}")
        result = newsdesk_round(config, server, args.feeds)
        rows.append(result)
        m, srv = result["measured"], result["server"]
        log(
            f"run {run}: newsdesk {phase}: {m.wall_s:.2f} s, {result['feeds_per_s']:.0f} "
            f"feeds/s, {result['entries_per_s']:,.0f} entries/s, {result['new_entries']} new "
            f"({result['stored_entries']} stored), {result['not_modified']} not modified; "
            f"CPU {m.cpu_s:.1f} s (main {m.main_cpu_s:.1f}, helpers {m.helper_cpu_s:.1f}); "
            f"others {result['other_load']:.2f} cores; RSS sum {m.sum_hwm_mb:.0f} MB, PSS "
            f"{m.peak_pss_mb:.0f} MB, {m.processes} processes; server {srv['statuses']} over "
            f"{srv['connections']} connections, "
            f"peak in flight {srv['peak_in_flight']}, CPU {srv['cpu_share']:.0%}; sampler "
            f"CPU {m.sampler_cpu_s:.1f} s; processes (peak RSS/CPU): {m.roles_line()}"
        )
        for problem in result["problems"]:
            log(f"  problem: {problem}")
    if r2e is None:
        return
    quiet(args, f"run {run} rss2email")
    result = rss2email_round(r2e, work / "r2e", work / "r2e.opml", server, args.entries)
    report.r2e.append(result)
    m, srv = result["measured"], result["server"]
    log(
        f"run {run}: rss2email: {m.wall_s:.1f} s, {args.rss2email_feeds / m.wall_s:.2f} "
        f"feeds/s, {result['mails'] / m.wall_s:,.0f} entries/s, {result['mails']} mails "
        f"({result['feeds_with_state']} feeds with state); CPU {m.cpu_s:.1f} s; others "
        f"{result['other_load']:.2f} cores; RSS {m.sum_hwm_mb:.0f} MB; server {srv['statuses']}"
    )
    for problem in result["problems"]:
        log(f"  problem: {problem}")


if __name__ == "__main__":
    sys.exit(main())
