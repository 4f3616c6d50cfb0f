"""The clustering job: every entry not in a story yet joins or opens one.

Entries are taken oldest published first, in batches of ``BATCH``; each batch is one
transaction under the clustering lock, so a killed process loses at most the batch it
was in (its entries are simply pending again) and two processes never cluster the same
entry. The :class:`~newsdesk.cluster.Clusterer` keeps what it loaded between batches
while nobody else changed the stories.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from newsdesk.cluster import BATCH, FIRST, Clusterer, ClusterParams, Item, with_names
from newsdesk.signals import signals_of
from newsdesk.store import Store
from newsdesk.store.stories import PendingEntry, StoryBatch

log = logging.getLogger("newsdesk.clustering")

MAX_CACHED_POSTINGS = 1_000_000
"""Beyond this many cached (term, story) weights the cache is dropped and reloaded."""


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
            f"({self.signals['same-url'] + self.signals['same-text']} same article, "
            f"{self.signals['same-event']} same event), {self.merged} merges"
        )


def url_key(canonical_url: str | None) -> str | None:
    if not canonical_url:
        return None
    return "u:" + hashlib.blake2b(canonical_url.encode(), digest_size=10).hexdigest()


def item_of(entry: PendingEntry) -> Item:
    return Item(
        entry_id=entry.id,
        published=entry.published,
        signals=signals_of(entry.title, entry.text, entry.lang),
        url_key=url_key(entry.canonical_url),
    )


def cluster_pending(
    store: Store, params: ClusterParams, *, now: datetime, limit: int | None = None
) -> ClusterSummary:
    """Cluster every pending entry (or the first ``limit``); see the module docstring."""
    started = time.perf_counter()
    summary = ClusterSummary()
    clusterer = Clusterer(params)
    version: object = None
    low_water: datetime | None = None
    while limit is None or summary.entries < limit:
        size = BATCH if limit is None else min(BATCH, limit - summary.entries)
        with store.stories.batch() as batch:
            current = batch.version()
            if current != version or clusterer.cached_postings > MAX_CACHED_POSTINGS:
                clusterer.forget()
                clusterer.documents = current[0]
                low_water = None
                _rebuild_split_stories(batch, clusterer)
            pending = batch.pending(size)
            if not pending:
                break
            items = [item_of(entry) for entry in pending]
            low = min(item.published for item in items) - params.window
            if low_water is not None and low < low_water:
                # Loaded postings start at low_water: an older entry needs a fresh load.
                clusterer.forget()
                clusterer.documents = current[0]
            low_water = low if low_water is None else min(low, low_water)
            _load(batch, clusterer, items, low_water)
            for item in items:
                clusterer.assign(item)
            _load_whole(batch, clusterer, clusterer.unsettled(), low_water)
            clusterer.settle()
            changes = clusterer.changes()
            titles = {e.id: e.title for e in pending}
            opened = {
                a.story_id: titles[a.entry_id] for a in changes.assignments if a.signal == FIRST
            }
            ids = batch.write(changes, opened, now)
            clusterer.renumber(ids)
            version = batch.version()
            clusterer.documents = version[0]
        summary.entries += len(items)
        summary.opened += len(changes.new_stories)
        summary.merged += len(changes.merges)
        summary.signals.update(a.signal for a in changes.assignments)
    summary.seconds = time.perf_counter() - started
    if summary.entries:
        log.info(summary.line(), extra={"entries": summary.entries, "stories": summary.opened})
    return summary


def _load(batch: StoryBatch, clusterer: Clusterer, items: Sequence[Item], low: datetime) -> None:
    terms, keys = clusterer.wants(items)
    clusterer.load(
        terms=terms,
        postings=batch.postings(terms, low),
        df=batch.term_counts(terms),
        keys=keys,
        key_stories=batch.key_stories(keys),
    )
    missing = clusterer.missing_stories()
    if missing:
        clusterer.load(stories=batch.states(missing), apart=batch.apart(missing))


def _load_whole(
    batch: StoryBatch, clusterer: Clusterer, story_ids: set[int], low: datetime
) -> None:
    """Every term of these stored stories, so that their centroids are whole in memory."""
    if not story_ids:
        return
    terms = batch.terms_of(story_ids)
    wanted = {t for t in terms if t not in clusterer.df}
    clusterer.load(terms=wanted, postings=batch.postings(wanted, low), df=batch.term_counts(wanted))
    missing = clusterer.missing_stories()
    if missing:
        clusterer.load(stories=batch.states(missing), apart=batch.apart(missing))


def _rebuild_split_stories(batch: StoryBatch, clusterer: Clusterer) -> None:
    """Centroids of stories the curator split, from their members' text."""
    for story_id in batch.unindexed():
        items = [item_of(entry) for entry in batch.member_texts(story_id)]
        terms = {t for item in items for t in item.signals.terms}
        clusterer.load(terms=terms, df=batch.term_counts(terms))
        centroid: dict[str, float] = {}
        for item in items:
            for term, weight in clusterer.vector(item.signals).items():
                centroid[term] = centroid.get(term, 0.0) + weight
        norm2 = sum(w * w for w in centroid.values())
        langs = {item.signals.lang for item in items if item.signals.lang}
        names: set[str] = set()
        for item in items:
            names = with_names(names, item.signals.strong)
        batch.set_centroid(story_id, centroid, norm2, langs, names)
    clusterer.forget()
