"""How story clustering scales: 10k, 100k and 300k generated entries, time and memory.

**Entries.** A deterministic stream (``--seed``) generated from the labelled corpora in
shared/corpus/stories: the 3,285 UCI News Aggregator headlines (43 gold stories) and the
1,230 SemEval-2022 Task 8 German/English articles (title = the first sentence-ish, at
most 18 words; summary = the next 60 words). Published at ~3,000 entries a day from
2024-01-01 (100k entries = ~33 days), by 500 outlets (feeds) with distinct names and
hosts, 120 of them German; German sources go to German outlets, the rest to English
ones, each outlet picked with Zipf weights (a few outlets post most). The stream is made
of *events*, started by a Poisson process:

- an event takes a source (half the time a UCI headline, half a SemEval article) and
  rewrites it once for the event: names and acronyms (capitalised mid-sentence and
  never seen in lower case in the corpus; in German only words in at most 3 sources
  without a common noun ending, as German capitalises every noun) are replaced, 90% of
  the time, by synthetic names drawn with Zipf weights from a pool of 60,000 (so
  popular names recur and new ones keep appearing, as in real news), numbers by random
  numbers of the same number of digits (years kept), topic-specific words (in at most
  20 sources, or with 60% of their uses in one UCI gold story) 95% of the time by
  synthetic words drawn with Zipf weights from a pool of 200,000, and 15% of the other
  words by corpus words of the same language. One mapping per event: all its entries
  say the same names. Without this, events drawn from one source (each source serves
  about one event in four days) would be near-duplicates of each other;
- 55% of events are single entries; the others have 2 to 30 entries (1% of events: 30
  to 80), published after the first at exponentially distributed delays (mean 2 h,
  at most 24 h), each by another outlet: a syndicated copy (same text; a quarter of
  them also carry the original's URL), another member of the source's gold story (UCI
  story, SemEval story; the same event mapping), or a light edit (a word dropped, two
  words swapped, the summary cut); a fifth of all titles get a " - Outlet" suffix;
- the stream is sorted by published time (monotonic, Poisson jitter). A smaller size
  is a prefix of a larger one.

UCI-sourced entries have no summary (the corpus has only headlines); SemEval-sourced
entries carry ``lang`` ("de"/"en"), as a feed declaring its language does.

**Timed.** For each ``--sizes`` (10,000, 100,000, 300,000): the entries are stored in a
fresh SQLite store in a temp dir (``store.entries.add_new`` per feed, in chunks; not
timed). Each of ``--runs`` runs copies that store and starts a child process pinned to
one core (``os.sched_setaffinity``, ``--cpu``), which opens the store and calls
``cluster_pending(store, ClusterParams(), now=...)`` once for every entry, as a fresh
daemon catching up would. Timed: that call only (wall and process CPU time), not the
interpreter start, the imports or opening the store. Memory: the child's RSS after the
imports and ``open_store`` (before clustering) and its peak RSS (``VmHWM`` of
/proc/self/status; ``ru_maxrss`` is printed as a cross-check but can carry the
pre-exec high-water mark of the parent). Reported: medians over the runs and the
spread, entries/s, stories found (not merged away, non-empty), B-cubed F1 against the
generated events (a sanity check that the stream clusters like news), distinct terms in
the index, DB size after.

**Floor.** In another pinned child on the same store: read every entry back from SQLite
(title, summary, content, lang) and compute ``newsdesk.signals.signals_of`` for each.
Clustering cannot be faster than this; its time is reported as a multiple of it.

**Rounds** (``--rounds 100000``, 0 to skip): one pinned child stores the same stream
``--round`` (2,000) entries at a time into a fresh store and calls ``cluster_pending``
after each round, as the daemon does after each fetch round, with one
``ClusterSession`` kept from round to round as the daemon keeps it; the per-round time
(only the clustering call) should not grow with the store. Then a second child does the
same cold, a new session each round, as ``newsdesk run --once`` from cron would. One run
each.

**Code.** Others may edit service/ during a run: the bench first copies the newsdesk
package (``--code worktree``, the default: the working tree as it is; or a git revision)
to its temp dir and re-executes itself with that copy first on ``PYTHONPATH``, so every
process of one run measures the same code; the report names it (commit, and a digest of
the uncommitted diff).

The machine is shared: before each timed child the bench waits (``--quiet-wait`` s at
most) for other processes to go quiet, and reports the cores others kept busy during
each clustering (``/proc/stat`` minus the child's CPU). A growth target of 10× entries
≤ 13× time is checked on the wall-time medians, 100k < 60 s on the wall-time median.

Usage: ``python bench/cluster_scale.py [--sizes 10000 100000 300000] [--runs 3]
[--no-doc]``; writes the "Clustering scale" section of docs/benchmarks.md unless
``--no-doc``. A default run took 33 minutes on 2 cores at commit e742669 (most of it
the three 300k runs); it shortens as the clustering gets faster.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import heapq
import io
import itertools
import json
import math
import os
import random
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import benchdoc
import newsdesk
from benchdoc import REPO, machine_line, write_section
from cluster_quality import SEMEVAL, UCI, bcubed
from newsdesk.cluster import ClusterParams
from newsdesk.clustering import ClusterSession, cluster_pending
from newsdesk.identity import canonical_url, content_hash
from newsdesk.models import FeedSpec, ParsedEntry
from newsdesk.signals import fold, signals_of
from newsdesk.store import Store, open_store

SIZES = (10_000, 100_000, 300_000)
SEED = 20261124
START = datetime(2024, 1, 1, tzinfo=UTC)
PER_DAY = 3_000
MEAN_EVENT_SIZE = 3.04
"""Entries per event of ``event_size``'s distribution (measured on 100k entries)."""
OUTLETS = 500
GERMAN_OUTLETS = 120
NAME_POOL = 60_000
WORD_POOL = 200_000
KEEP_NAME = 0.1
SPECIFIC_DF = 20
SPECIFIC_SWAP = 0.95
WORD_SWAP = 0.15
TITLE_WORDS = 18
SUMMARY_WORDS = 60
DELAY_MEAN = 7_200.0
DELAY_MAX = 86_400.0
POPULATE_CHUNK = 10_000
GROWTH_TARGET = 13.0
SNAPSHOT_ENV = "CLUSTER_SCALE_SNAPSHOT"
"""Set in the re-executed bench: its work directory and what code it measures."""
TARGET_100K = 60.0


# -- the generator ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    title: str
    summary: str
    lang: str
    """``de`` or ``en`` (the language of the outlet that publishes it)."""
    declared: str | None
    """What the entry declares: SemEval's label, None for UCI headlines."""
    group: tuple[int, ...]
    """Sources in the same gold story, this one included."""


@dataclass(frozen=True, slots=True)
class Outlet:
    name: str
    host: str
    lang: str


@dataclass(frozen=True, slots=True)
class Generated:
    event: int
    variant: int
    """0 for the event's first entry."""
    outlet: int
    title: str
    summary: str
    url: str
    lang: str | None
    published: datetime

    def parsed(self) -> ParsedEntry:
        return ParsedEntry(
            key=f"guid:gen-{self.event}-{self.variant}",
            title=self.title,
            url=self.url,
            canonical_url=canonical_url(self.url),
            summary=self.summary,
            content="",
            author=None,
            published=self.published,
            updated=None,
            lang=self.lang,
            content_hash=content_hash(self.title, self.url, self.summary),
        )


_TOKEN_RE = re.compile(r"[^\W_]+|[\W_]+")
_SENTENCE_END = frozenset(".!?:\n")
_ONSETS = "b br c ch d dr f g gr h j k kl l m n p pr r s sch sh st t tr v w z".split()
_VOWELS = "a e i o u a e i o ai ei ou".split()
_CODAS = ["", "", "n", "r", "s", "l", "m", "nd", "rt", "x", "ck", "th"]
_OUTLET_NOUNS = (
    "Herald Times Post Tribune Gazette Courier Daily Journal Observer Chronicle Review "
    "Wire Report Ledger Sentinel Monitor Today Online Insider Standard Express Record"
).split()
_GERMAN_NOUNS = "Zeitung Rundschau Anzeiger Kurier Allgemeine Nachrichten Blatt Post".split()
_GERMAN_NOUN_ENDS = tuple(
    "ung heit keit schaft tion tät ismus nis tum chen e en ern ten ter".split()
)
_TLDS = (".com", ".net", ".org", ".news", ".co.uk", ".com.au")


class Corpus:
    """The sources, their vocabulary, and the words treated as names."""

    def __init__(self) -> None:
        self.sources: list[Source] = []
        self._load_uci()
        self.uci_count = len(self.sources)
        self._load_semeval()
        self.names = self._names()
        self.specific = self._specific()
        self.words: dict[str, list[str]] = defaultdict(list)
        for s in self.sources:
            for token in _TOKEN_RE.findall(f"{s.title} {s.summary}"):
                if token.isalpha() and token.islower() and len(token) >= 4:
                    self.words[s.lang].append(token)

    def _load_uci(self) -> None:
        rows = [json.loads(line) for line in UCI.open(encoding="utf-8")]
        rows.sort(key=lambda r: (r["published"], int(r["id"])))
        members: dict[str, list[int]] = defaultdict(list)
        for i, r in enumerate(rows):
            members[r["story"]].append(i)
        for r in rows:
            group = tuple(members[r["story"]])
            self.sources.append(Source(r["title"], "", "en", None, group))

    def _load_semeval(self) -> None:
        articles = [json.loads(line) for line in (SEMEVAL / "articles.jsonl").open()]
        base = len(self.sources)
        members: dict[str, list[int]] = defaultdict(list)
        for i, a in enumerate(articles):
            members[a["story_id"]].append(base + i)
        for a in articles:
            title, summary = split_article(a["text"], a.get("title"))
            group = tuple(members[a["story_id"]])
            self.sources.append(Source(title, summary, a["lang"], a["lang"], group))

    def _names(self) -> frozenset[str]:
        """Capitalised mid-sentence, never lower case anywhere; German only: in ≤ 3
        sources and without a common noun ending (German capitalises every noun)."""
        capitalised: dict[str, set[int]] = defaultdict(set)
        lower: set[str] = set()
        for i, s in enumerate(self.sources):
            for text in (s.title, s.summary):
                trust_case = not looks_title_case(text)
                for token, sentence_start in words_of(text):
                    if token.islower():
                        lower.add(token)
                    elif trust_case and token[0].isupper() and not sentence_start:
                        capitalised[token].add(i)
        german = {i for i, s in enumerate(self.sources) if s.lang == "de"}
        return frozenset(
            w
            for w, where in capitalised.items()
            if w.casefold() not in lower
            and len(w) >= 2
            and w.isalpha()
            and (not where <= german or (len(where) <= 3 and not w.endswith(_GERMAN_NOUN_ENDS)))
        )

    def _specific(self) -> frozenset[str]:
        """Folded words that mark a topic: in at most ``SPECIFIC_DF`` sources, or (UCI)
        with 60% of their uses in one gold story."""
        df: Counter[str] = Counter()
        per_story: dict[str, Counter[int]] = defaultdict(Counter)
        for i, s in enumerate(self.sources):
            words = {
                token.casefold()
                for token, _ in words_of(f"{s.title} {s.summary}")
                if token.isalpha() and len(token) >= 4
            }
            df.update(words)
            if i < self.uci_count:
                for word in words:
                    per_story[word][s.group[0]] += 1
        out = {word for word, n in df.items() if n <= SPECIFIC_DF}
        for word, stories in per_story.items():
            total = sum(stories.values())
            if total >= 3 and max(stories.values()) >= 0.6 * total:
                out.add(word)
        return frozenset(out)


def split_article(text: str, title: str | None) -> tuple[str, str]:
    """(title, summary) of a SemEval article: its first line or first sentence-ish."""
    if title and text.startswith(title):
        head, rest = title, text[len(title) :]
        head_words = head.split()[:TITLE_WORDS]
    else:
        words = text.split()
        head_words = []
        for word in words[:TITLE_WORDS]:
            head_words.append(word)
            if len(head_words) >= 8 and word[-1:] in ".!?":
                break
        if len(head_words) == TITLE_WORDS:
            head_words = head_words[:15]
        rest = " ".join(words[len(head_words) :])
    return " ".join(head_words).rstrip(" .:"), " ".join(rest.split()[:SUMMARY_WORDS])


def words_of(text: str) -> Iterator[tuple[str, bool]]:
    """The word tokens of ``text``, each with whether it starts a sentence."""
    sentence_start = True
    for token in _TOKEN_RE.findall(text):
        if token[0].isalnum():
            yield token, sentence_start
            sentence_start = False
        elif any(c in _SENTENCE_END for c in token):
            sentence_start = True


def looks_title_case(text: str) -> bool:
    long = [w for w in text.split() if w[:1].isalpha() and len(w) > 3]
    return len(long) >= 3 and sum(w[0].isupper() for w in long) / len(long) > 0.6


class Zipf:
    """Index 0..n-1, index i with weight 1 / (i + offset)."""

    def __init__(self, n: int, offset: float = 2.0) -> None:
        total = 0.0
        self.cumulative = []
        for i in range(n):
            total += 1.0 / (i + offset)
            self.cumulative.append(total)

    def draw(self, rng: random.Random) -> int:
        return bisect.bisect_left(self.cumulative, rng.random() * self.cumulative[-1])


def synthetic_names(rng: random.Random, n: int) -> list[str]:
    names: dict[str, None] = {}
    while len(names) < n:
        parts = [
            rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
            for _ in range(rng.choice((2, 2, 3)))
        ]
        names.setdefault("".join(parts).capitalize())
    order = list(names)
    rng.shuffle(order)
    return order


def make_outlets(rng: random.Random, names: Sequence[str]) -> list[Outlet]:
    outlets: list[Outlet] = []
    seen: set[str] = set()
    for place in names:
        german = len(outlets) < GERMAN_OUTLETS
        noun = rng.choice(_GERMAN_NOUNS if german else _OUTLET_NOUNS)
        name = f"{place} {noun}"
        host = re.sub(r"[^a-z]", "", fold(name)) + (".de" if german else rng.choice(_TLDS))
        if host in seen:
            continue
        seen.add(host)
        outlets.append(Outlet(name, host, "de" if german else "en"))
        if len(outlets) == OUTLETS:
            break
    return outlets


class Generator:
    """The entry stream described in the module docstring."""

    def __init__(self, seed: int, corpus: Corpus) -> None:
        self.rng = random.Random(seed)
        self.corpus = corpus
        pool = synthetic_names(self.rng, NAME_POOL + WORD_POOL + 2 * OUTLETS)
        self.outlets = make_outlets(self.rng, pool[NAME_POOL + WORD_POOL :])
        self.names = pool[:NAME_POOL]
        self.pick_name = Zipf(NAME_POOL, 20.0)
        self.words = [w.lower() for w in pool[NAME_POOL : NAME_POOL + WORD_POOL]]
        self.pick_word = Zipf(WORD_POOL, 50.0)
        self.by_lang = {
            lang: [i for i, o in enumerate(self.outlets) if o.lang == lang] for lang in ("de", "en")
        }
        self.pick_outlet = {lang: Zipf(len(ids), 5.0) for lang, ids in self.by_lang.items()}
        self.events = 0
        self.event_gap = 86_400.0 * MEAN_EVENT_SIZE / PER_DAY

    def stream(self, n: int) -> Iterator[Generated]:
        """The first ``n`` entries, oldest published first."""
        heap: list[tuple[datetime, int, Generated]] = []
        seq = 0
        clock = START
        emitted = 0
        while emitted < n:
            clock += timedelta(seconds=self.rng.expovariate(1.0 / self.event_gap))
            while heap and heap[0][0] <= clock and emitted < n:
                yield heapq.heappop(heap)[2]
                emitted += 1
            for entry in self._event(clock):
                seq += 1
                heapq.heappush(heap, (entry.published, seq, entry))

    def _event(self, start: datetime) -> list[Generated]:
        rng, corpus = self.rng, self.corpus
        event = self.events
        self.events += 1
        if rng.random() < 0.5:
            index = rng.randrange(corpus.uci_count)
        else:
            index = rng.randrange(corpus.uci_count, len(corpus.sources))
        original = corpus.sources[index]
        mapping: dict[str, str] = {}
        first = self._text(original, mapping)
        first_outlet = self._outlet(original.lang, None)
        slug = "-".join(re.findall(r"[a-z0-9]+", fold(first[0]))[:6]) or "story"
        first_url = f"https://{self.outlets[first_outlet].host}/{start:%Y/%m/%d}/{slug}-{event}"
        entries = [self._entry(event, 0, first_outlet, first, original, first_url, start)]
        used = {first_outlet}
        for k in range(1, event_size(rng)):
            published = start + timedelta(seconds=min(rng.expovariate(1.0 / DELAY_MEAN), DELAY_MAX))
            kind = rng.random()
            source = original
            url = None
            if kind < 0.35:
                text = first
                url = first_url if rng.random() < 0.25 else None
            elif kind < 0.60 and len(original.group) > 1:
                source = corpus.sources[rng.choice(original.group)]
                text = self._text(source, mapping)
            else:
                text = edit(rng, first)
            outlet = self._outlet(source.lang, used)
            used.add(outlet)
            if url is None:
                host = self.outlets[outlet].host
                url = f"https://{host}/{published:%Y/%m/%d}/{slug}-{event}-{k}"
            entries.append(self._entry(event, k, outlet, text, source, url, published))
        return entries

    def _entry(
        self,
        event: int,
        k: int,
        outlet: int,
        text: tuple[str, str],
        source: Source,
        url: str,
        published: datetime,
    ) -> Generated:
        title, summary = text
        if self.rng.random() < 0.2 and len(title.split()) >= 3:
            title = f"{title} - {self.outlets[outlet].name}"
        return Generated(event, k, outlet, title, summary, url, source.declared, published)

    def _outlet(self, lang: str, used: set[int] | None) -> int:
        ids = self.by_lang[lang]
        for _ in range(20):
            choice = ids[self.pick_outlet[lang].draw(self.rng)]
            if not used or choice not in used:
                return choice
        return ids[self.rng.randrange(len(ids))]

    def _text(self, source: Source, mapping: dict[str, str]) -> tuple[str, str]:
        return self._rewrite(source.title, source.lang, mapping), self._rewrite(
            source.summary, source.lang, mapping
        )

    def _rewrite(self, text: str, lang: str, mapping: dict[str, str]) -> str:
        out = []
        for token in _TOKEN_RE.findall(text):
            if not token[0].isalnum():
                out.append(token)
            elif token not in mapping:
                mapping[token] = self._replacement(token, lang)
                out.append(mapping[token])
            else:
                out.append(mapping[token])
        return "".join(out)

    def _replacement(self, token: str, lang: str) -> str:
        rng = self.rng
        if any(c.isdigit() for c in token):
            if token.isdigit() and 1900 <= int(token) <= 2030:
                return token
            digits = [str(rng.randrange(10)) if c.isdigit() else c for c in token]
            if token[0].isdigit() and len(token) > 1 and digits[0] == "0":
                digits[0] = str(rng.randrange(1, 10))
            return "".join(digits)
        acronym = token.isupper() and 2 <= len(token) <= 5
        if acronym or token in self.corpus.names:
            if rng.random() < KEEP_NAME:
                return token
            name = self.names[self.pick_name.draw(rng)]
            return name[: max(len(token), 3)].upper() if acronym else name
        if len(token) < 4 or not token.isalpha():
            return token
        if token.casefold() in self.corpus.specific and rng.random() < SPECIFIC_SWAP:
            word = self.words[self.pick_word.draw(rng)]
            return word.capitalize() if token[0].isupper() else word
        if token.islower() and rng.random() < WORD_SWAP:
            return rng.choice(self.corpus.words[lang])
        return token


def event_size(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.55:
        return 1
    if r < 0.99:
        return min(2 + int(rng.expovariate(1 / 3.0)), 30)
    return rng.randint(30, 80)


def edit(rng: random.Random, text: tuple[str, str]) -> tuple[str, str]:
    """A light edit: a title word dropped and/or two swapped; the summary cut or thinned."""
    words = text[0].split()
    if len(words) >= 6 and rng.random() < 0.6:
        del words[rng.randrange(1, len(words))]
    if len(words) >= 4 and rng.random() < 0.6:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    summary = text[1].split()
    if summary:
        if rng.random() < 0.5:
            summary = summary[: rng.randint(max(1, len(summary) // 2), len(summary))]
        for _ in range(rng.randint(0, 3)):
            if len(summary) > 5:
                del summary[rng.randrange(len(summary))]
    return " ".join(words), " ".join(summary)


# -- populating a store (not timed) ----------------------------------------------------


@dataclass
class Populated:
    path: Path
    entries: int
    events: int
    first: datetime
    last: datetime
    seconds: float


def add_outlets(store: Store, outlets: Sequence[Outlet]) -> list[int]:
    return [
        store.feeds.add(
            FeedSpec(url=f"https://{o.host}/feed", name=o.name), source="cli", now=START
        ).id
        for o in outlets
    ]


def store_chunk(store: Store, feed_ids: Sequence[int], chunk: Sequence[Generated]) -> None:
    by_feed: dict[int, list[ParsedEntry]] = defaultdict(list)
    for g in chunk:
        by_feed[g.outlet].append(g.parsed())
    now = chunk[-1].published
    for outlet, parsed in by_feed.items():
        store.entries.add_new(feed_ids[outlet], parsed, now=now)


def populate(path: Path, size: int, seed: int, corpus: Corpus) -> Populated:
    started = time.perf_counter()
    generator = Generator(seed, corpus)
    store = open_store(f"sqlite:///{path}")
    feed_ids = add_outlets(store, generator.outlets)
    chunk: list[Generated] = []
    first = last = START
    events: set[int] = set()
    for g in generator.stream(size):
        if not chunk and first == START:
            first = g.published
        last = g.published
        events.add(g.event)
        chunk.append(g)
        if len(chunk) == POPULATE_CHUNK:
            store_chunk(store, feed_ids, chunk)
            chunk = []
    if chunk:
        store_chunk(store, feed_ids, chunk)
    count = store.entries.count()
    store.close()
    if count != size:
        raise RuntimeError(f"stored {count} entries, expected {size}")
    return Populated(path, size, len(events), first, last, time.perf_counter() - started)


def db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


# -- the child processes (pinned to one core) -------------------------------------------


def proc_status(pid: int | str = "self") -> dict[str, float]:
    """VmRSS and VmHWM of a process (this one by default), in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def child_cluster(path: Path, now: datetime) -> dict[str, Any]:
    store = open_store(f"sqlite:///{path}")
    before = proc_status()
    # For a parent that stops this run: when clustering (not the start-up) began.
    started_file(path).write_text(repr(time.time()))
    wall, cpu = time.perf_counter(), time.process_time()
    summary = cluster_pending(store, ClusterParams(), now=now)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = proc_status()
    store.close()
    return {
        "wall": wall,
        "cpu": cpu,
        "entries": summary.entries,
        "opened": summary.opened,
        "merged": summary.merged,
        "signals": dict(summary.signals),
        "rss_before": before["VmRSS"],
        "hwm_before": before["VmHWM"],
        "rss_after": after["VmRSS"],
        "peak": after["VmHWM"],
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def started_file(path: Path) -> Path:
    return path.with_name(path.name + ".started")


def child_floor(path: Path) -> dict[str, Any]:
    store = open_store(f"sqlite:///{path}")
    wall, cpu = time.perf_counter(), time.process_time()
    terms = 0
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT title, summary, content, lang FROM entries")
        for title, summary, content, lang in rows:
            terms += len(signals_of(title, summary or content, lang).terms)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    store.close()
    return {"wall": wall, "cpu": cpu, "terms": terms}


def child_rounds(
    path: Path, size: int, round_size: int, seed: int, *, cold: bool
) -> dict[str, Any]:
    generator = Generator(seed, Corpus())
    store = open_store(f"sqlite:///{path}")
    feed_ids = add_outlets(store, generator.outlets)
    rounds: list[tuple[float, float, int]] = []
    chunk: list[Generated] = []
    kept = ClusterSession()

    def one_round() -> None:
        store_chunk(store, feed_ids, chunk)
        session = ClusterSession() if cold else kept
        wall, cpu = time.perf_counter(), time.process_time()
        summary = cluster_pending(store, ClusterParams(), now=chunk[-1].published, session=session)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rounds.append((wall, cpu, summary.entries))

    for g in generator.stream(size):
        chunk.append(g)
        if len(chunk) == round_size:
            one_round()
            chunk = []
    if chunk:
        one_round()
    store.close()
    return {"rounds": rounds, "peak": proc_status()["VmHWM"], "digest": clustering_digest(path)}


def clustering_digest(path: Path) -> str:
    """A digest of the stories and the term counts: equal for equal clusterings."""
    digest = hashlib.sha256()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for query in (
            "SELECT entry_id, story_id FROM story_entries ORDER BY entry_id",
            "SELECT term, entries FROM term_counts ORDER BY term",
        ):
            for row in conn.execute(query):
                digest.update(repr(row).encode())
    finally:
        conn.close()
    return digest.hexdigest()[:12]


def run_child(
    args: Sequence[str], cpu: int, timeout: float | None = None, script: Path | None = None
) -> tuple[dict[str, Any], float, bool]:
    """Run this script (or ``script``) in child mode pinned to ``cpu``: its JSON result,
    the cores others kept busy meanwhile, and whether it ran out of ``timeout`` and was
    killed (the result then holds its peak RSS and when it was killed)."""
    busy = machine_busy()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, str((script or Path(__file__)).resolve()), "--pin", str(cpu), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0.0
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        peak = proc_status(child.pid)["VmHWM"]
        child.kill()
        peak_at = time.time()
        stdout, stderr = child.communicate()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    others = max(0.0, (machine_busy() - busy - own) / wall)
    if peak:
        return {"killed_at": peak_at, "peak": peak}, others, True
    if child.returncode:
        raise RuntimeError(f"child {args} failed:\n{stderr}")
    return json.loads(stdout.strip().splitlines()[-1]), others, False


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU-seconds the machine has been busy since boot, all cores (``/proc/stat``)."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICKS


def wait_for_quiet(patience: float, limit: float = 0.3) -> float:
    """Wait up to ``patience`` s until the machine is < ``limit`` cores busy; the last load."""
    deadline = time.monotonic() + patience
    while True:
        before = machine_busy()
        time.sleep(1.0)
        load = machine_busy() - before
        if load < limit or time.monotonic() >= deadline:
            return load


# -- measuring -------------------------------------------------------------------------


@dataclass
class SizeResult:
    size: int
    populated: Populated
    runs: list[dict[str, Any]] = field(default_factory=list)
    floors: list[dict[str, Any]] = field(default_factory=list)
    others: list[float] = field(default_factory=list)
    stories: int = 0
    f1: float = 0.0
    terms: int = 0
    story_terms: int = 0
    db_mb: float = 0.0
    cutoff: dict[str, Any] | None = None
    """Set when a run ran out of ``--timeout``: entries clustered by then, peak RSS."""

    def median(self, key: str, rows: str = "runs") -> float:
        return statistics.median(r[key] for r in getattr(self, rows))

    def spread(self, key: str) -> tuple[float, float]:
        values = [r[key] for r in self.runs]
        return min(values), max(values)


def clustered_facts(path: Path, *, full: bool = True) -> dict[str, Any]:
    """Stories, index size and story per entry of a clustered store (read-only); only
    the number of entries in stories unless ``full``."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        if not full:
            return {"clustered": conn.execute("SELECT count(*) FROM story_entries").fetchone()[0]}
        stories = conn.execute(
            "SELECT count(*) FROM stories WHERE merged_into IS NULL AND size > 0"
        ).fetchone()[0]
        terms = conn.execute("SELECT count(*) FROM term_counts").fetchone()[0]
        story_terms = conn.execute("SELECT count(*) FROM story_terms").fetchone()[0]
        rows = conn.execute(
            "SELECT e.key, s.story_id FROM entries e JOIN story_entries s ON s.entry_id = e.id"
        ).fetchall()
    finally:
        conn.close()
    gold = [key.split("-")[1] for key, _ in rows]
    predicted = [story for _, story in rows]
    return {
        "stories": stories,
        "terms": terms,
        "story_terms": story_terms,
        "clustered": len(rows),
        "f1": bcubed(gold, predicted)[2] if rows else 0.0,
    }


def measure_size(size: int, args: argparse.Namespace, corpus: Corpus, work: Path) -> SizeResult:
    log(f"{size:,}: generating and storing entries")
    base = work / f"base-{size}.db"
    populated = populate(base, size, args.seed, corpus)
    log(
        f"{size:,}: stored in {populated.seconds:.0f} s ({populated.events:,} events, "
        f"{populated.first:%Y-%m-%d} .. {populated.last:%Y-%m-%d})"
    )
    result = SizeResult(size, populated)
    now = populated.last + timedelta(minutes=1)
    for run in range(1, args.runs + 1):
        copy = work / f"run-{size}-{run}.db"
        shutil.copyfile(base, copy)
        quiet(args, f"{size:,} run {run}")
        measured, others, killed = run_child(
            ["--child-cluster", str(copy), "--now", now.isoformat()], args.cpu, args.timeout
        )
        result.others.append(others)
        if killed:
            clustered = clustered_facts(copy, full=False)["clustered"]
            began = float(started_file(copy).read_text())
            seconds = measured["killed_at"] - began
            result.cutoff = {"clustered": clustered, "peak": measured["peak"], "seconds": seconds}
            log(
                f"{size:,} run {run}: stopped after {seconds:.0f} s of clustering with "
                f"{clustered:,} of {size:,} entries clustered, peak {measured['peak']:.0f} MB "
                f"(others kept {others:.2f} cores busy); no more runs of this size"
            )
        else:
            if measured["entries"] != size:
                raise RuntimeError(f"clustered {measured['entries']} of {size} entries")
            result.runs.append(measured)
            log(
                f"{size:,} run {run}: {measured['wall']:.1f} s wall, {measured['cpu']:.1f} s "
                f"CPU, peak {measured['peak']:.0f} MB (others kept {others:.2f} cores busy)"
            )
        if run == 1 and not killed:
            facts = clustered_facts(copy)
            if facts["clustered"] != size:
                raise RuntimeError(f"{facts['clustered']} of {size} entries in stories")
            result.stories, result.f1 = facts["stories"], facts["f1"]
            result.terms, result.story_terms = facts["terms"], facts["story_terms"]
            result.db_mb = db_bytes(copy) / 1e6
        quiet(args, f"{size:,} floor {run}")
        floor, _, _ = run_child(["--child-floor", str(copy)], args.cpu)
        result.floors.append(floor)
        for leftover in copy.parent.glob(copy.name + "*"):
            leftover.unlink()
        if result.cutoff:
            break
    base.unlink()
    return result


def measure_rounds(args: argparse.Namespace, work: Path, *, cold: bool) -> dict[str, Any]:
    path = work / "rounds.db"
    how = "cold" if cold else "one session"
    quiet(args, f"rounds ({how})")
    log(f"rounds ({how}): {args.rounds:,} entries, {args.round:,} per round")
    out, others, _ = run_child(
        [
            "--child-rounds",
            str(path),
            "--sizes",
            str(args.rounds),
            "--round",
            str(args.round),
            "--seed",
            str(args.seed),
            *(["--cold"] if cold else []),
        ],
        args.cpu,
    )
    out["others"] = others
    for p in path.parent.glob(path.name + "*"):
        p.unlink()
    return out


# -- report ----------------------------------------------------------------------------


def wall_time(r: SizeResult) -> tuple[float, bool]:
    """Median wall time of a size, and whether it is only a lower bound (stopped)."""
    if r.runs:
        return r.median("wall"), False
    return cut_seconds(r), True


def cut_seconds(r: SizeResult) -> float:
    assert r.cutoff is not None
    return float(r.cutoff["seconds"])


def growth(
    results: Sequence[SizeResult],
) -> list[tuple[SizeResult, SizeResult, float, float, bool]]:
    """(smaller, larger, wall ratio, ratio per 10× entries, lower bound only) for
    consecutive sizes; a stopped size counts as the time it had run."""
    out = []
    for a, b in itertools.pairwise(results):
        if not a.runs:
            break
        ratio = (b.median("wall") if b.runs else cut_seconds(b)) / a.median("wall")
        per_10x = 10 ** (math.log(ratio) / math.log(b.size / a.size))
        out.append((a, b, ratio, per_10x, not b.runs))
    return out


def fmt_size(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else f"{n:,}"


def table_row(r: SizeResult) -> str:
    days = (r.populated.last - r.populated.first).total_seconds() / 86_400
    floor = r.median("wall", "floors")
    if not r.runs:
        assert r.cutoff is not None
        done, seconds = r.cutoff["clustered"], cut_seconds(r)
        return (
            f"| {r.size:,} | {days:.0f} | > {seconds:.0f} s (stopped: {done:,} clustered) "
            f"| - | {done / seconds:,.0f} until stopped | - | ≥ {r.cutoff['peak']:.0f} MB "
            f"| - | {r.populated.events:,} | - | - | - | {floor:.1f} s "
            f"| > {seconds / floor:.0f}× |"
        )
    wall = r.median("wall")
    low, high = r.spread("wall")
    return (
        f"| {r.size:,} | {days:.0f} | {wall:.1f} s ({low:.1f}-{high:.1f}) "
        f"| {r.median('cpu'):.1f} s | {r.size / wall:,.0f} | {r.median('rss_before'):.0f} MB "
        f"| {r.median('peak'):.0f} MB | {r.stories:,} | {r.populated.events:,} "
        f"| {r.f1:.3f} | {r.terms:,} | {r.db_mb:.0f} MB | {floor:.1f} s "
        f"| {wall / floor:.1f}× |"
    )


def report(
    args: argparse.Namespace,
    results: Sequence[SizeResult],
    rounds: tuple[dict[str, Any], dict[str, Any]] | None,
    state: str,
) -> str:
    lines = [
        # machine_line() names HEAD when the report is written; the code measured is the
        # copy taken at the start (see snapshot_code), named on its own line.
        machine_line().split(" Code: ")[0],
        f"Code measured: {state}.",
        "",
        "```",
        command_line(args),
        "```",
        "",
        "Entries: a deterministic stream generated from shared/corpus/stories (UCI headlines "
        "and SemEval-2022 German/English articles, half each by event) at ~3,000 entries a "
        "day from 500 outlets (120 German), as events: 55% single entries, the rest 2-80 "
        "entries over hours from other outlets (syndicated copies, other members of the "
        "source's gold story, light edits). Each event rewrites its source: names (90% "
        "replaced by Zipf draws from 60,000 synthetic ones), numbers, topic-specific words "
        "(95% replaced by Zipf draws from 200,000 synthetic ones) and 15% of the other "
        "words, so that events from one source differ and the vocabulary keeps growing. "
        "Details in the module docstring of `bench/cluster_scale.py`.",
        "",
        f"Timed: one `cluster_pending(store, ClusterParams(), now=...)` call over every "
        f"entry of a fresh SQLite store (entries stored beforehand, not timed), in a child "
        f"process pinned to one core (core {args.cpu}), as a daemon catching up would; "
        f"wall time of that call, median of {args.runs} run{'s' if args.runs > 1 else ''} "
        f"(min-max; a run still going after {args.timeout:.0f} s is stopped, and so are the "
        "later runs of its size), and its CPU time. RSS before = after imports and `open_store`; "
        "peak = the child's VmHWM. Floor = the same child reading every entry back from "
        "SQLite and computing `signals_of` (clustering cannot be faster). B³ F1 is against "
        "the generated events (a sanity check of the stream, not a quality result).",
        "",
        "| entries | days | wall (min-max) | CPU | entries/s | RSS before | peak RSS "
        "| stories | events | B³ F1 | terms | DB | floor | × floor |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        *(table_row(r) for r in results),
        "",
    ]
    targets: list[bool | None] = []
    for a, b, ratio, per_10x, bound in growth(results):
        cpu = "" if bound else f" ({b.median('cpu') / a.median('cpu'):.2f}× CPU)"
        ge = "> " if bound else ""
        ok: bool | None = per_10x <= GROWTH_TARGET
        if bound and ok:
            ok = None  # a lower bound under the target says nothing
        verdict = {True: "met", False: "NOT met", None: "unknown"}[ok]
        lines.append(
            f"- {fmt_size(a.size)} → {fmt_size(b.size)}: {b.size / a.size:.0f}× entries → "
            f"{ge}{ratio:.2f}× wall time{cpu}; as a rate per 10× entries: {ge}{per_10x:.1f}× "
            f"(target ≤ {GROWTH_TARGET:.0f}×: {verdict})."
        )
        targets.append(ok)
    for r in results:
        if r.size == 100_000:
            wall, bound = wall_time(r)
            ok = wall < TARGET_100K
            shown = f"> {wall:.0f}" if bound else f"{wall:.1f}"
            lines.append(
                f"- 100k entries in {shown} s on one core (target < {TARGET_100K:.0f} s: "
                f"{'met' if ok else 'NOT met'})."
            )
            targets.append(ok)
    for r in results:
        if not r.runs:
            continue
        grown = r.median("peak") - r.median("rss_before")
        lines.append(
            f"- {fmt_size(r.size)}: clustering grew the process by {grown:.0f} MB "
            f"({1000 * grown / r.size:.2f} MB per 1,000 entries); story_terms rows "
            f"{r.story_terms:,}; other processes kept {statistics.median(r.others):.2f} "
            "cores busy (median over runs)."
        )
    if rounds:
        kept, cold = rounds
        lines += ["", rounds_line(args, kept), "", cold_rounds_line(kept, cold)]
    if len(targets) < 3:
        verdict = "not all checked (they need the sizes 10k, 100k and 300k)"
    elif False in targets:
        verdict = "no"
    elif None in targets:
        verdict = "unknown"
    else:
        verdict = "yes"
    lines += ["", f"Targets met: {verdict}."]
    return "\n".join(lines)


def cold_rounds_line(kept: dict[str, Any], cold: dict[str, Any]) -> str:
    walls = [r[0] for r in cold["rounds"]]
    total, kept_total = sum(walls), sum(r[0] for r in kept["rounds"])
    return (
        "The same rounds cold, a new `ClusterSession` each round (as `newsdesk run --once` "
        f"from cron): first {walls[0]:.2f} s, last {walls[-1]:.2f} s, median of the last 5 "
        f"{statistics.median(walls[-5:]):.2f} s; all rounds {total:.1f} s wall "
        f"({total / kept_total:.2f}× the kept session's), peak RSS {cold['peak']:.0f} MB; "
        f"others kept {cold['others']:.2f} cores busy. Same stories and term counts as with "
        f"the kept session: {'yes' if cold['digest'] == kept['digest'] else 'NO'}."
    )


def rounds_line(args: argparse.Namespace, rounds: dict[str, Any]) -> str:
    walls = [r[0] for r in rounds["rounds"]]
    # Rounds that start with a full window of stories behind them (72 h of entries).
    window = ClusterParams().window.total_seconds()
    full = math.ceil(window / 86_400 * PER_DAY / args.round)
    if len(walls) >= full + 10:
        settled = statistics.median(walls[full : full + 5])
        last = statistics.median(walls[-5:])
        medians = (
            f"median of rounds {full + 1}-{full + 5} (the first with a full {window / 3600:.0f} "
            f"h window of stories behind them) {settled:.2f} s, of the last 5 {last:.2f} s "
            f"({last / settled:.2f}×; {args.round / last:,.0f} entries/s)"
        )
    else:
        medians = f"median of the last 5 {statistics.median(walls[-5:]):.2f} s"
    return (
        f"Incremental (`--rounds {args.rounds}`, one run): the same stream stored "
        f"{args.round:,} entries at a time, `cluster_pending` after each round with one "
        "`ClusterSession` kept throughout, as the daemon does (timed: that call only). "
        f"{len(walls)} rounds: first {walls[0]:.2f} s, last {walls[-1]:.2f} s; "
        f"{medians}; all rounds {sum(walls):.1f} s wall, "
        f"{sum(r[1] for r in rounds['rounds']):.1f} s CPU, peak RSS {rounds['peak']:.0f} MB "
        f"(entry generation included); others kept {rounds['others']:.2f} cores busy."
    )


def print_table(results: Sequence[SizeResult]) -> None:
    for r in results:
        if not r.runs:
            continue
        walls = ", ".join(f"{x['wall']:.1f}" for x in r.runs)
        floors = ", ".join(f"{x['wall']:.1f}" for x in r.floors)
        log(
            f"{r.size:,}: wall runs [{walls}] s, floor runs [{floors}] s, "
            f"ru_maxrss {r.median('ru_maxrss'):.0f} MB vs VmHWM {r.median('peak'):.0f} MB, "
            f"signals {r.runs[0]['signals']}, merges {r.runs[0]['merged']}"
        )


# -- plumbing --------------------------------------------------------------------------


def snapshot_code(code: str, dest: Path) -> str:
    """Copy the newsdesk package as of ``code`` (``worktree`` or a git revision) into
    ``dest``; returns what was copied, for the report."""
    if code == "worktree":
        shutil.copytree(
            REPO / "service" / "newsdesk",
            dest / "newsdesk",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        return benchdoc.code_state()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", code, "service/newsdesk"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    (dest / "service" / "newsdesk").rename(dest / "newsdesk")
    return f"commit {benchdoc.git('rev-parse', '--short', code)} (`--code {code}`)"


def command_line(args: argparse.Namespace) -> str:
    parts = ["python bench/cluster_scale.py"]
    if tuple(args.sizes) != SIZES:
        parts.append("--sizes " + " ".join(str(s) for s in args.sizes))
    defaults = {
        "runs": 3,
        "seed": SEED,
        "rounds": 100_000,
        "round": 2_000,
        "timeout": 600.0,
        "code": "worktree",
    }
    for name, default in defaults.items():
        if getattr(args, name) != default:
            value = getattr(args, name)
            parts.append(f"--{name} {value:g}" if isinstance(value, float) else f"--{name} {value}")
    return " ".join(parts)


def quiet(args: argparse.Namespace, label: str) -> None:
    """Give other people's processes a chance to finish before a timed phase."""
    if args.quiet_wait <= 0:
        return
    load = wait_for_quiet(args.quiet_wait)
    if load >= 0.3:
        log(f"{label}: the machine is still busy ({load:.2f} cores used by others); going on")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def add_run_args(parser: argparse.ArgumentParser) -> None:
    """The options of how a run is made, shared with ``bench/cluster_pg.py``."""
    parser.add_argument(
        "--cpu", type=int, default=(os.cpu_count() or 1) - 1, help="core the children run on"
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=20.0, help="seconds to wait for other load (20)"
    )
    parser.add_argument(
        "--code",
        default="worktree",
        help="the newsdesk code measured: worktree (default; copied at start) or a git revision",
    )


def on_snapshot(code: str, argv: Sequence[str], script: Path, env_name: str) -> tuple[Path, str]:
    """Run ``script`` on a copy of the newsdesk package as of ``code``: the first call
    copies it and re-executes the script with the copy first on ``PYTHONPATH`` (others
    edit service/ while a bench runs, and every process of one run must import the
    same code); in the re-executed script, the work directory and what was copied."""
    if env_name not in os.environ:
        work = Path(tempfile.mkdtemp(prefix=f"{script.stem.replace('_', '-')}-"))
        state = snapshot_code(code, work / "src")
        path = os.pathsep.join(p for p in (str(work / "src"), os.environ.get("PYTHONPATH")) if p)
        env = os.environ | {env_name: f"{work}\n{state}", "PYTHONPATH": path}
        os.execve(sys.executable, [sys.executable, str(script.resolve()), *argv], env)
    work_name, state = os.environ[env_name].split("\n", 1)
    if not Path(newsdesk.__file__).is_relative_to(work_name):
        raise RuntimeError(f"newsdesk imported from {newsdesk.__file__}, not the snapshot")
    return Path(work_name), state


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--runs", type=int, default=3, help="runs per size; medians reported")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--rounds", type=int, default=100_000, help="entries for the incremental run (0: skip)"
    )
    parser.add_argument("--round", type=int, default=2_000, help="entries per round")
    add_run_args(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="stop a clustering run after this many seconds, and the runs of its size (600)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    parser.add_argument("--no-doc", action="store_true", help="don't write docs/benchmarks.md")
    parser.add_argument("--pin", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-cluster", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-floor", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-rounds", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def child_main(args: argparse.Namespace) -> int:
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    if args.child_cluster:
        out = child_cluster(args.child_cluster, datetime.fromisoformat(args.now))
    elif args.child_floor:
        out = child_floor(args.child_floor)
    else:
        out = child_rounds(args.child_rounds, args.sizes[0], args.round, args.seed, cold=args.cold)
    print(json.dumps(out))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.child_cluster or args.child_floor or args.child_rounds:
        return child_main(args)
    if not UCI.exists() or not SEMEVAL.exists():
        print(f"corpus not found under {UCI.parents[1]}", file=sys.stderr)
        return 1
    work, state = on_snapshot(args.code, argv, Path(__file__), SNAPSHOT_ENV)
    log(f"measuring {state}, copied to {work / 'src'}")
    corpus = Corpus()
    try:
        results = [measure_size(size, args, corpus, work) for size in sorted(args.sizes)]
        rounds = (
            (measure_rounds(args, work, cold=False), measure_rounds(args, work, cold=True))
            if args.rounds
            else None
        )
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_table(results)
    text = report(args, results, rounds, state)
    print(text)
    if not args.no_doc:
        write_section("Clustering scale", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
