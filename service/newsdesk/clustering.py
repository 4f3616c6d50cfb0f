"""The clustering job: every entry not in a story yet joins or opens one.

Entries are taken oldest published first, in batches of ``BATCH`` (the clusterer
settles each batch); up to ``BATCHES_PER_TRANSACTION`` batches are one transaction under
the clustering lock, so a killed process loses at most the batches of the transaction
it was in (their entries are simply pending again) and two processes never cluster the
same entry. The :class:`~newsdesk.cluster.Clusterer` keeps what it loaded between batches
while nobody else changed the stories.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from newsdesk.cluster import (
    BATCH,
    FIRST,
    SAME_EVENT,
    SAME_TEXT,
    SAME_URL,
    Clusterer,
    ClusterParams,
    Item,
    StoryState,
    with_names,
)
from newsdesk.identity import plain_text
from newsdesk.semantic import Embedder, Vector, text_for
from newsdesk.signals import repair_mojibake
from newsdesk.store import Store
from newsdesk.store.stories import PendingEntry, StoryBatch

log = logging.getLogger("newsdesk.clustering")

PRUNE_AFTER = timedelta(hours=12)
"""How far the window moves on before stories behind it leave the cache; it keeps as
much behind the window again, so that an entry published a little before the last
round's oldest (feeds are late) does not need everything reloaded."""

MAX_CACHED_POSTINGS = 1_000_000
"""Beyond this many cached (term, story) weights the cache is dropped and reloaded."""

BATCHES_PER_TRANSACTION = 2
"""Batches one transaction holds: 4,000 entries a commit. A commit writes out every
index page its batches changed, and consecutive batches change mostly the same pages
(the term counts, the same-article keys, the newest era of the term index): fewer,
larger commits write less (at 100,000 entries, 3.6 s of commits at 4,000 entries a
commit, 4.6 s at 2,000), while the lock is held for two fetch rounds' worth of entries,
two or three seconds; a daemon's own rounds are one transaction each."""


@dataclass
class ClusterSummary:
    entries: int = 0
    opened: int = 0
    merged: int = 0
    signals: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def line(self) -> str:
        joined = self.entries - self.opened
        return (
            f"clustered {self.entries} entries: {self.opened} new stories, {joined} joined "
            f"({self.signals[SAME_URL] + self.signals[SAME_TEXT]} same article, "
            f"{self.signals[SAME_EVENT]} same event), {self.merged} merges"
        )


def url_key(canonical_url: str | None) -> str | None:
    if not canonical_url:
        return None
    return "u:" + hashlib.blake2b(canonical_url.encode(), digest_size=10).hexdigest()


def item_of(entry: PendingEntry, embedding: Vector | None = None) -> Item:
    return Item(
        entry_id=entry.id,
        published=entry.published,
        signals=entry.signals(),
        url_key=url_key(entry.canonical_url),
        embedding=embedding,
    )


def embedding_text(entry: PendingEntry) -> str:
    return text_for(
        plain_text(repair_mojibake(entry.title)), plain_text(repair_mojibake(entry.text))
    )


def embed(embedder: Embedder | None, entries: Sequence[PendingEntry]) -> dict[int, Vector]:
    if embedder is None or not entries:
        return {}
    vectors = embedder.embed([embedding_text(e) for e in entries])
    return {e.id: v for e, v in zip(entries, vectors, strict=True)}


class ClusterSession:
    """What a long-running process keeps from one clustering call to the next (the
    daemon keeps one): the clusterer's cache of the window, good as long as nobody else
    changed the stories (their version says, as between the batches of one call), and
    the embedding model. A call without a session starts cold, as a command does; both
    give the same stories (checked by ``bench/cluster_scale.py`` over 100,000 entries)."""

    def __init__(self) -> None:
        self.clusterer = Clusterer()
        self.embedder: Embedder | None = None
        self.version: int | None = None
        """The stories' version after our last write: another, and the cache is stale."""
        self.low_water: datetime | None = None
        """Loaded postings reach back to here."""

    def ready(self, params: ClusterParams, embedder: Embedder | None) -> None:
        """Set for ``params``: other parameters start from nothing."""
        if params != self.clusterer.params:
            self.clusterer = Clusterer(params)
            self.embedder = None
            self.invalidate()
        if embedder is not None:
            self.embedder = embedder
        elif params.semantic and self.embedder is None:
            self.embedder = Embedder()

    def invalidate(self) -> None:
        """The next step reloads: a failed transaction left the cache ahead of the store."""
        self.version = None
        self.low_water = None


def cluster_pending(
    store: Store,
    params: ClusterParams,
    *,
    now: datetime,
    limit: int | None = None,
    embedder: Embedder | None = None,
    session: ClusterSession | None = None,
) -> ClusterSummary:
    """Cluster every pending entry (or the first ``limit``); see the module docstring.

    In semantic mode the entries are embedded before the transaction takes the lock:
    the model is the slow part, and the fetch round must not wait for it.
    """
    started = time.perf_counter()
    session = session or ClusterSession()
    session.ready(params, embedder)
    job = _Job(session, now)
    try:
        while size := job.room(limit, BATCH * BATCHES_PER_TRANSACTION):
            pending = store.stories.peek_pending(size) if session.embedder else []
            embeddings = embed(session.embedder, pending)
            with store.stories.batch() as batch:
                for _ in range(BATCHES_PER_TRANSACTION):
                    if not job.step(batch, job.room(limit, BATCH), embeddings):
                        break
            if job.done:
                break
    except BaseException:
        session.invalidate()
        raise
    summary = job.summary
    summary.seconds = time.perf_counter() - started
    if summary.entries:
        log.info(summary.line(), extra={"entries": summary.entries, "stories": summary.opened})
    return summary


@dataclass
class _Job:
    """One ``cluster_pending`` call, on its session's cache."""

    session: ClusterSession
    now: datetime
    summary: ClusterSummary = field(default_factory=ClusterSummary)
    done: bool = False
    """No entry was pending (or ``limit`` is reached)."""

    def room(self, limit: int | None, most: int) -> int:
        """Entries the next step may take: ``most``, fewer near ``limit``."""
        if limit is None:
            return most
        return max(0, min(most, limit - self.summary.entries))

    def step(self, batch: StoryBatch, size: int, embeddings: dict[int, Vector]) -> bool:
        """Cluster one batch of up to ``size`` entries; False when there was none."""
        session = self.session
        clusterer, embedder = session.clusterer, session.embedder
        params = clusterer.params
        if batch.version() != session.version or clusterer.cached_postings > MAX_CACHED_POSTINGS:
            clusterer.forget()
            clusterer.documents = batch.clustered()
            if params.semantic:
                clusterer.space = batch.space()
            session.low_water = None
            _rebuild_split_stories(batch, clusterer, embedder)
            # An empty cache is in step with the store too: idle rounds need no reload.
            session.version = batch.version()
        pending = batch.pending(size) if size else []
        if not pending:
            self.done = True
            return False
        # Entries stored meanwhile (an older published date) are embedded here.
        embeddings |= embed(embedder, [e for e in pending if e.id not in embeddings])
        items = [item_of(entry, embeddings.get(entry.id)) for entry in pending]
        low = min(item.published for item in items) - params.window
        low_water = session.low_water
        if low_water is not None and low < low_water:
            # Loaded postings start at low_water: an older entry needs a fresh load.
            clusterer.forget()
            low_water = None
        if low_water is not None and low - low_water > 2 * PRUNE_AFTER:
            low_water = low - PRUNE_AFTER
            clusterer.prune(low_water)
        low_water = low if low_water is None else min(low, low_water)
        session.low_water = low_water
        _load(batch, clusterer, items, low_water)
        for item in items:
            clusterer.assign(item)
        _load_whole(batch, clusterer, clusterer.unsettled(), low_water)
        clusterer.settle()
        changes = clusterer.changes()
        titles = {e.id: e.title for e in pending}
        opened = {a.story_id: titles[a.entry_id] for a in changes.assignments if a.signal == FIRST}
        ids = batch.write(changes, opened, self.now)
        clusterer.renumber(ids)
        if changes.merges:
            # The store sums a merged centroid's norm afresh, in its own order: the cache
            # takes that value, to the last bit, as a reload would (else a cache kept
            # across batches and rounds could rank two equal candidates otherwise).
            survivors = {ids.get(m.survivor, m.survivor) for m in changes.merges}
            clusterer.set_norms(batch.norms(survivors))
        session.version = batch.version()
        summary = self.summary
        summary.entries += len(items)
        summary.opened += len(changes.new_stories)
        summary.merged += len(changes.merges)
        summary.signals.update(a.signal for a in changes.assignments)
        return True


def _load(batch: StoryBatch, clusterer: Clusterer, items: Sequence[Item], low: datetime) -> None:
    terms, keys = clusterer.wants(items)
    df = batch.term_counts(terms)
    # A term the counts do not know is in no story's centroid (the store keeps a count
    # row for every indexed term): most of a batch's unseen terms are new words, and
    # their postings need no look.
    clusterer.load(
        terms=terms,
        postings=batch.postings([term for term, _ in df], low),
        df=df,
        keys=keys,
        key_stories=batch.key_stories(keys),
    )
    # A story reached by a same-article key may be older than the window the postings
    # were loaded for: its whole centroid comes too, so that joining it stays exact.
    keyed = clusterer.keyed_stories(keys)
    if keyed:
        clusterer.load(postings=batch.centroids(keyed))
    _load_states(batch, clusterer)


def _load_whole(
    batch: StoryBatch, clusterer: Clusterer, story_ids: set[int], low: datetime
) -> None:
    """Every term of these stored stories, so that their centroids are whole in memory."""
    if not story_ids:
        return
    terms = batch.terms_of(story_ids)
    wanted = {t for t in terms if t not in clusterer.df}
    clusterer.load(terms=wanted, postings=batch.postings(wanted, low), df=batch.term_counts(wanted))
    _load_states(batch, clusterer)


def _load_states(batch: StoryBatch, clusterer: Clusterer) -> None:
    """The state (and curator splits) of every story the loaded rows name."""
    missing = clusterer.missing_stories()
    if missing:
        clusterer.load(stories=batch.states(missing), apart=batch.apart(missing))


def _rebuild_split_stories(
    batch: StoryBatch, clusterer: Clusterer, embedder: Embedder | None
) -> None:
    """Centroids of stories the curator split, from their members' text."""
    for story_id in batch.unindexed():
        members = batch.member_texts(story_id)
        embeddings = embed(embedder, members)
        items = [item_of(entry, embeddings.get(entry.id)) for entry in members]
        terms = {t for item in items for t in item.signals.terms}
        clusterer.load(terms=terms, df=batch.term_counts(terms))
        centroid: dict[str, float] = {}
        story = StoryState(
            id=story_id,
            first=min(item.published for item in items),
            last=max(item.published for item in items),
            norm2=0.0,
            size=len(items),
        )
        for item in items:
            for term, weight in clusterer.vector(item.signals).items():
                centroid[term] = centroid.get(term, 0.0) + weight
            if item.signals.lang:
                story.langs.add(item.signals.lang)
            story.names = with_names(story.names, item.signals.strong)
            if item.embedding is not None:
                previous = 0.0 if story.semantic is None else story.semantic
                story.semantic = item.embedding + previous
                story.semantic_count += 1
        story.norm2 = sum(w * w for w in centroid.values())
        batch.set_centroid(story, centroid)
    clusterer.forget()
