"""Retention: entries past the configured age leave the store, a story at a time, and a
tombstone per entry keeps its feed from bringing it back (until the feed has left it
out for a while: :func:`newsdesk.store.entries.forget_dropped`).

An entry is *prunable* when it was both published and first seen before the cutoff (an
old archive ingested today is kept for the whole retention from today). A story goes
when every member is prunable and no issue names it (whatever the issue's status: its
archive page and its ledger read the story); then its entries go with it, and so do the
husks merged into it. Entries in no story (not clustered yet, or never) go on their own.
A kept story keeps every member: centroids, sizes and "Read on" lists stay whole.

The clustering's index is kept exact: the term counts (the IDF) lose the terms of every
pruned clustered entry, read as the clustering read them (``PendingEntry.signals``), and
in semantic mode the running sum of embeddings loses the pruned stories' sums.

Each batch is one transaction under the clustering lock (tombstones, deletes and index
updates together), so a process killed mid-prune leaves a consistent store, the daemon's
other writers wait at most one batch on SQLite, and a clustering pass never works on a
story that is going.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)

from newsdesk.semantic import MODEL, from_bytes, to_bytes
from newsdesk.store import driver
from newsdesk.store.feeds import _insert
from newsdesk.store.issues import with_survivors
from newsdesk.store.schema import (
    cluster_state,
    entries,
    entry_tombstones,
    era_of,
    issue_stories,
    stories,
    story_entries,
    story_terms,
    term_counts,
)
from newsdesk.store.stories import _bump_version, _entry_texts, _pending_entry, lock

BATCH = 500
"""Stories (or storyless entries) per transaction: each batch holds SQLite's write lock
for a fraction of a second."""

_MERGE_DEPTH = 32
"""Merge chains followed at most this far (merges point husks at the final survivor, so
one step is the rule; the bound only guards against a cycle)."""

PRUNED_TABLES = (
    "entries",
    "story_entries",
    "entry_keys",
    "stories",
    "story_terms",
    "term_counts",
    "entry_tombstones",
)


@dataclass(frozen=True, slots=True)
class PruneSummary:
    """What one prune removed (or, ``dry_run``, would remove)."""

    cutoff: datetime
    entries: int = 0
    stories: int = 0
    """Stories removed, husks of merged stories not counted."""
    tombstones: int = 0
    dry_run: bool = False

    def line(self) -> str:
        verb = "would prune" if self.dry_run else "pruned"
        return (
            f"retention: {verb} {self.entries:,} entries and {self.stories:,} stories "
            f"older than {self.cutoff:%Y-%m-%d}"
        )

    def __add__(self, other: PruneSummary) -> PruneSummary:
        return replace(
            self,
            entries=self.entries + other.entries,
            stories=self.stories + other.stories,
            tombstones=self.tombstones + other.tombstones,
        )


def retention_cutoff(retention: timedelta, now: datetime) -> datetime | None:
    """Entries published and first seen before the returned time are prunable; None when
    ``retention`` is 0 (keep everything)."""
    if retention <= timedelta(0):
        return None
    return now - retention


@dataclass(frozen=True, slots=True)
class _Page:
    """One batch's worth of work, chosen by id after ``after``."""

    stories: list[int]
    """Live stories to remove (those an issue names are left out)."""
    husks: list[int]
    """Stories merged into them."""
    entries: list[int]
    last: int | None
    """The highest id looked at: the next page starts after it (None: nothing left)."""


def prune(
    engine: Engine,
    cutoff: datetime,
    now: datetime,
    *,
    batch: int = BATCH,
    max_batches: int | None = None,
) -> PruneSummary:
    """Remove what is older than ``cutoff`` (see the module docstring), ``batch`` stories
    or storyless entries per transaction; stop after ``max_batches`` transactions."""
    summary = PruneSummary(cutoff)
    done = 0
    for pick in (_story_page, _entry_page):
        after = 0
        while max_batches is None or done < max_batches:
            with engine.begin() as conn:
                lock(conn)
                page = pick(conn, cutoff, after, batch)
                if page.last is None:
                    break
                summary += _remove(conn, page, cutoff, now)
            done += 1
            after = page.last
    return summary


def prunable(engine: Engine, cutoff: datetime, *, batch: int = BATCH) -> PruneSummary:
    """What :func:`prune` would remove now, counted by the same selection; no writes."""
    summary = PruneSummary(cutoff, dry_run=True)
    with engine.connect() as conn:
        for pick in (_story_page, _entry_page):
            after = 0
            while (page := pick(conn, cutoff, after, batch)).last is not None:
                members = _member_count(conn, page.stories)
                entries_gone = members + len(page.entries)
                summary += PruneSummary(cutoff, entries_gone, len(page.stories), entries_gone)
                after = page.last
    return summary


def maintain(engine: Engine) -> None:
    """Routine upkeep after a prune: fresh planner statistics, and on SQLite the WAL
    written back and truncated.

    No VACUUM: on SQLite the freed pages are reused by new entries (a VACUUM would
    rewrite the whole file under the write lock); on PostgreSQL VACUUM cannot run inside
    a transaction block, and autovacuum reclaims the dead rows anyway.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA optimize")
            # TRUNCATE: the WAL file shrinks back to nothing once every page is home.
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            for table in PRUNED_TABLES:
                conn.exec_driver_sql(f"ANALYZE {table}")
        conn.commit()


# -- choosing ---------------------------------------------------------------------------


def _recent(cutoff: datetime) -> ColumnElement[bool]:
    """An entry that keeps its story: published or first seen since the cutoff."""
    return or_(entries.c.published_at >= cutoff, entries.c.first_seen_at >= cutoff)


def _story_page(conn: Connection, cutoff: datetime, after: int, size: int) -> _Page:
    """The next ``size`` live stories after id ``after`` whose members are all prunable,
    without those an issue holds."""
    keeps_it = (
        select(story_entries.c.entry_id)
        .join(entries, entries.c.id == story_entries.c.entry_id)
        .where(story_entries.c.story_id == stories.c.id, _recent(cutoff))
    )
    query = (
        select(stories.c.id)
        .where(
            stories.c.merged_into.is_(None),
            stories.c.id > after,
            # Implied by "every member is old" (it is their latest date): lets the index
            # on last_published_at skip the recent stories, which are most of them.
            stories.c.last_published_at < cutoff,
            ~exists(keeps_it),
        )
        .order_by(stories.c.id)
        .limit(size)
    )
    candidates = list(conn.execute(query).scalars())
    if not candidates:
        return _Page([], [], [], None)
    held = _held_by_issues(conn)
    chosen = [sid for sid in candidates if sid not in held]
    return _Page(chosen, _husks(conn, chosen), [], candidates[-1])


def _entry_page(conn: Connection, cutoff: datetime, after: int, size: int) -> _Page:
    """The next ``size`` prunable entries after id ``after`` that are in no story."""
    in_a_story = select(story_entries.c.entry_id).where(story_entries.c.entry_id == entries.c.id)
    query = (
        select(entries.c.id)
        .where(
            entries.c.published_at < cutoff,
            entries.c.first_seen_at < cutoff,
            entries.c.id > after,
            ~exists(in_a_story),
        )
        .order_by(entries.c.id)
        .limit(size)
    )
    ids = list(conn.execute(query).scalars())
    return _Page([], [], ids, ids[-1] if ids else None)


def _held_by_issues(conn: Connection) -> set[int]:
    """Stories any issue names, and the stories those were merged into since."""
    return with_survivors(conn, set(conn.execute(select(issue_stories.c.story_id)).scalars()))


def _husks(conn: Connection, story_ids: Sequence[int]) -> list[int]:
    """Stories merged into these (directly or along a chain)."""
    found: set[int] = set()
    frontier = set(story_ids)
    for _ in range(_MERGE_DEPTH):
        if not frontier:
            break
        merged: set[int] = set()
        for chunk in driver.chunks(sorted(frontier)):
            query = select(stories.c.id).where(stories.c.merged_into.in_(chunk))
            merged.update(conn.execute(query).scalars())
        frontier = merged - found - set(story_ids)
        found |= frontier
    return sorted(found)


def _member_count(conn: Connection, story_ids: Sequence[int]) -> int:
    total = 0
    for chunk in driver.chunks(story_ids):
        query = select(func.count()).where(story_entries.c.story_id.in_(chunk))
        total += int(conn.execute(query).scalar_one())
    return total


# -- removing ---------------------------------------------------------------------------


def _remove(conn: Connection, page: _Page, cutoff: datetime, now: datetime) -> PruneSummary:
    """One batch: tombstones, entries, the index's counts, then the stories."""
    entry_ids = sorted({*page.entries, *_members(conn, [*page.stories, *page.husks])})
    if not entry_ids and not page.stories:
        return PruneSummary(cutoff)  # every candidate was held by an issue
    removed, terms = _remove_entries(conn, entry_ids, now)
    _remove_stories(conn, page.stories, page.husks)
    # After the stories: a term only they held leaves the counts with them.
    _uncount(conn, terms)
    # A clusterer holding these stories or counts in its cache reloads them.
    _bump_version(conn)
    return PruneSummary(cutoff, removed, len(page.stories), removed)


def _members(conn: Connection, story_ids: Sequence[int]) -> list[int]:
    out: list[int] = []
    for chunk in driver.chunks(sorted(story_ids)):
        query = select(story_entries.c.entry_id).where(story_entries.c.story_id.in_(chunk))
        out.extend(conn.execute(query).scalars())
    return out


def _remove_entries(
    conn: Connection, entry_ids: Sequence[int], now: datetime
) -> tuple[int, Counter[str]]:
    """Tombstone and delete these entries; how many, and the terms the clustering
    counted for them (to take off the term counts).

    Their story memberships and same-article keys (``entry_keys``) go by the foreign
    keys' cascade (enforced on SQLite by the engine's ``foreign_keys`` pragma).
    """
    if not entry_ids:
        return 0, Counter()
    tombstones: list[dict[str, object]] = []
    terms: Counter[str] = Counter()
    for chunk in driver.chunks(entry_ids):
        query = (
            _entry_texts()
            .add_columns(entries.c.feed_id, entries.c.key, entries.c.clustered)
            .where(entries.c.id.in_(chunk))
        )
        for row in conn.execute(query):
            tombstones.append(
                {"feed_id": row.feed_id, "key": row.key, "pruned_at": now, "seen_at": now}
            )
            if row.clustered:
                # Exactly what the clustering added when it placed the entry: one per term.
                terms.update(_pending_entry(row).signals().terms.keys())
    conn.execute(_insert(conn)(entry_tombstones).on_conflict_do_nothing(), tombstones)
    for chunk in driver.chunks(entry_ids):
        conn.execute(delete(entries).where(entries.c.id.in_(chunk)))
    return len(tombstones), terms


def _uncount(conn: Connection, terms: Counter[str]) -> None:
    """Subtract from the term counts; a term no entry holds any more leaves the table,
    unless a centroid still holds it.

    The pruned entries' terms are re-derived with today's feed languages, which may not
    be the ones they were counted with; a term still in a story's centroid then stays
    at 0, since the clustering reads the postings only of terms with a row.
    """
    if not terms:
        return
    # Plain tuples to the driver's executemany, as the clustering writes them (see
    # newsdesk.store.driver): a batch touches thousands of terms, and SQLAlchemy's per-row
    # parameter handling made this step 2.3 times slower (110,000 terms: 1.7 s, 0.7 s).
    mark = driver.mark(conn.dialect)
    conn.exec_driver_sql(
        f"UPDATE term_counts SET entries = entries - {mark} WHERE term = {mark}",
        [(gone, term) for term, gone in sorted(terms.items())],
    )
    for chunk in driver.chunks(sorted(terms)):
        spent = set(
            conn.execute(
                select(term_counts.c.term).where(
                    term_counts.c.term.in_(chunk), term_counts.c.entries <= 0
                )
            ).scalars()
        )
        held = _indexed(conn, spent)
        conn.execute(delete(term_counts).where(term_counts.c.term.in_(sorted(spent - held))))
        if held:
            conn.execute(
                update(term_counts).where(term_counts.c.term.in_(sorted(held))).values(entries=0)
            )


def _indexed(conn: Connection, terms: set[str]) -> set[str]:
    """Those of ``terms`` some story's centroid holds."""
    if not terms:
        return set()
    first, last = conn.execute(select(func.min(stories.c.id), func.max(stories.c.id))).one()
    if first is None:
        return set()
    # The term index leads with the era: each era the stories span is sought by term.
    eras = list(range(era_of(first), era_of(last) + 1))
    query = (
        select(story_terms.c.term)
        .distinct()
        .where(story_terms.c.era.in_(eras), story_terms.c.term.in_(terms))
    )
    return set(conn.execute(query).scalars())


def _remove_stories(conn: Connection, live: Sequence[int], husks: Sequence[int]) -> None:
    """Delete the stories with their centroids; curator splits go by cascade."""
    _unsum_embeddings(conn, live)
    for chunk in driver.chunks(sorted([*live, *husks])):
        conn.execute(delete(story_terms).where(story_terms.c.story_id.in_(chunk)))
        conn.execute(delete(stories).where(stories.c.id.in_(chunk)))


def _unsum_embeddings(conn: Connection, story_ids: Iterable[int]) -> None:
    """Semantic mode: take the pruned stories' embeddings off the running sum whose mean
    the similarity is centred on.

    Live stories only: a merge adds the husk's sum to its survivor and leaves the husk's
    column as it was, so a husk's sum is counted in its survivor's already.
    """
    space = conn.execute(
        select(cluster_state.c.count, cluster_state.c.vector).where(cluster_state.c.name == MODEL)
    ).first()
    if space is None:
        return
    before = int(space._mapping["count"])  # Row.count is the tuple method
    total, count = from_bytes(space.vector), before
    for chunk in driver.chunks(sorted(story_ids)):
        query = select(stories.c.semantic, stories.c.semantic_count).where(
            stories.c.id.in_(chunk), stories.c.semantic.is_not(None)
        )
        for row in conn.execute(query):
            total = total - from_bytes(row.semantic)
            count -= row.semantic_count
    if count == before:
        return
    if count <= 0:
        # Nothing embedded is left: the space starts again from its prior.
        conn.execute(delete(cluster_state).where(cluster_state.c.name == MODEL))
        return
    conn.execute(
        update(cluster_state)
        .where(cluster_state.c.name == MODEL)
        .values(count=count, vector=to_bytes(total))
    )
