"""Stories: the clustering's index (centroids, term counts, same-article keys), its
results (which entry is in which story, and why), and the curator's corrections."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    String,
    Table,
    and_,
    any_,
    bindparam,
    delete,
    false,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import TypeEngine

from newsdesk.cluster import CURATOR, Changes, StoryState, with_names
from newsdesk.errors import UsageError
from newsdesk.ranking import Member
from newsdesk.semantic import MODEL, SemanticSpace, Vector, from_bytes, to_bytes
from newsdesk.signals import Signals, signals_of
from newsdesk.store import driver
from newsdesk.store.engine import write_lock
from newsdesk.store.feeds import _insert
from newsdesk.store.schema import (
    cluster_state,
    entries,
    entry_keys,
    era_of,
    feeds,
    stories,
    story_apart,
    story_entries,
    story_terms,
    term_counts,
)

CLUSTER_LOCK = 0x6E657773_0002
"""PostgreSQL advisory lock taken by one clustering batch at a time."""


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """An entry not in any story yet, with what the clustering reads of it."""

    id: int
    title: str
    text: str
    lang: str | None
    canonical_url: str | None
    published: datetime

    def signals(self) -> Signals:
        """What the clustering compares of this entry. Its terms are what ``term_counts``
        counts: the retention takes them back off with this same reading."""
        return signals_of(self.title, self.text, self.lang)


@dataclass(frozen=True, slots=True)
class StoryRow:
    id: int
    title: str
    first: datetime
    last: datetime
    size: int
    merged_into: int | None


def lock(conn: Connection) -> None:
    """Take the clustering lock for the rest of the transaction."""
    write_lock(conn)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%(key)s)", {"key": CLUSTER_LOCK})


class StoryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def batch(self) -> Iterator[StoryBatch]:
        """One clustering transaction, holding the clustering lock until it ends: two
        processes cluster one after the other, never the same entry twice."""
        with self.engine.connect() as conn, conn.begin():
            lock(conn)
            yield StoryBatch(conn)

    # -- reading -----------------------------------------------------------------------

    def peek_pending(self, limit: int) -> list[PendingEntry]:
        """The entries the next batch will most likely take, read without the lock."""
        with self.engine.connect() as conn:
            return StoryBatch(conn).pending(limit)

    def counts(self) -> dict[str, int]:
        """Stories, and entries waiting for the clustering (0 unless it is behind)."""
        with self.engine.connect() as conn:
            total = conn.execute(
                select(func.count()).select_from(stories).where(stories.c.merged_into.is_(None))
            ).scalar_one()
            return {"total": int(total), "pending_entries": StoryBatch(conn).pending_count()}

    def get(self, story_id: int) -> StoryRow:
        """The story with this id, following merges; UsageError when there is none."""
        with self.engine.connect() as conn:
            return _resolve(conn, story_id)

    def active(self, low: datetime, high: datetime) -> list[StoryRow]:
        """Stories with an entry published in [low, high]."""
        query = select(stories).where(
            stories.c.merged_into.is_(None),
            stories.c.size > 0,
            stories.c.last_published_at >= low,
            stories.c.first_published_at <= high,
        )
        with self.engine.connect() as conn:
            return [_story_row(r) for r in conn.execute(query)]

    def members(self, story_ids: Sequence[int]) -> dict[int, list[Member]]:
        """The entries of each story with their feeds, oldest first."""
        out: dict[int, list[Member]] = defaultdict(list)
        with self.engine.connect() as conn:
            for chunk in driver.chunks(sorted(story_ids)):
                query = (
                    select(
                        story_entries.c.story_id,
                        story_entries.c.signal,
                        story_entries.c.similarity,
                        entries.c.id.label("entry_id"),
                        entries.c.url,
                        entries.c.title,
                        entries.c.published_at,
                        func.coalesce(entries.c.lang, feeds.c.lang).label("lang"),
                        feeds.c.url.label("feed_url"),
                        func.coalesce(feeds.c.name, feeds.c.title, feeds.c.url).label("feed_name"),
                        feeds.c.site_url,
                        feeds.c.section,
                        feeds.c.weight,
                        feeds.c.priority,
                    )
                    .join(entries, entries.c.id == story_entries.c.entry_id)
                    .join(feeds, feeds.c.id == entries.c.feed_id)
                    .where(story_entries.c.story_id.in_(chunk))
                    .order_by(entries.c.published_at, entries.c.id)
                )
                for r in conn.execute(query):
                    out[r.story_id].append(
                        Member(
                            entry_id=r.entry_id,
                            url=r.url,
                            title=r.title,
                            published=r.published_at,
                            lang=r.lang,
                            feed_name=r.feed_name,
                            feed_url=r.feed_url,
                            site_url=r.site_url,
                            section=r.section,
                            weight=r.weight,
                            priority=r.priority,
                            signal=r.signal,
                            similarity=r.similarity,
                        )
                    )
        return dict(out)

    # -- the curator's corrections -----------------------------------------------------

    def merge(self, survivor_id: int, absorbed_id: int, now: datetime) -> StoryRow:
        """Fold one story into another for good; returns the survivor."""
        with self.engine.begin() as conn:
            lock(conn)
            survivor, absorbed = _resolve(conn, survivor_id), _resolve(conn, absorbed_id)
            if survivor.id == absorbed.id:
                raise UsageError(f"stories {survivor_id} and {absorbed_id} are one story already")
            conn.execute(
                update(story_entries)
                .where(story_entries.c.story_id == absorbed.id)
                .values(signal=CURATOR, pinned=True)
            )
            conn.execute(
                delete(story_apart).where(
                    or_(
                        and_(
                            story_apart.c.story_id == survivor.id,
                            story_apart.c.other_id == absorbed.id,
                        ),
                        and_(
                            story_apart.c.story_id == absorbed.id,
                            story_apart.c.other_id == survivor.id,
                        ),
                    )
                )
            )
            merge_stories(conn, survivor.id, absorbed.id, now)
            _bump_version(conn)
            return _resolve(conn, survivor.id)

    def split(
        self, story_id: int, url: str, now: datetime, *, canonical: str | None = None
    ) -> tuple[StoryRow, int]:
        """Move the entry with ``url`` (or that canonical URL) out of a story into a
        story of its own.

        The two stories are kept apart from then on, and the entry stays where the
        curator put it. Returns the new story and the moved entry's id.
        """
        with self.engine.begin() as conn:
            lock(conn)
            story = _resolve(conn, story_id)
            members = conn.execute(
                select(
                    entries.c.id,
                    entries.c.url,
                    entries.c.canonical_url,
                    entries.c.title,
                    entries.c.published_at,
                )
                .join(story_entries, story_entries.c.entry_id == entries.c.id)
                .where(story_entries.c.story_id == story.id)
            ).all()
            wanted = {url, canonical} - {None}
            match = [m for m in members if wanted & {m.url, m.canonical_url}]
            if not match:
                raise UsageError(f"story {story.id} has no entry with URL {url}")
            if len(members) == 1:
                raise UsageError(f"story {story.id} has only that entry; nothing to split")
            entry = match[0]
            new_id = conn.execute(
                stories.insert().returning(stories.c.id),
                {
                    "title": entry.title,
                    "first_published_at": entry.published_at,
                    "last_published_at": entry.published_at,
                    "created_at": now,
                    "updated_at": now,
                    "size": 0,
                    "norm2": 0.0,
                    "langs": "",
                    "names": "",
                },
            ).scalar_one()
            conn.execute(
                update(story_entries)
                .where(story_entries.c.entry_id == entry.id)
                .values(story_id=new_id, signal=CURATOR, similarity=1.0, pinned=True)
            )
            conn.execute(story_apart.insert(), {"story_id": story.id, "other_id": new_id})
            # Both centroids are rebuilt by the next clustering pass (see rebuild).
            conn.execute(delete(story_terms).where(story_terms.c.story_id.in_([story.id, new_id])))
            for sid in (story.id, new_id):
                _refresh_story(conn, sid, now)
            _bump_version(conn)
            return _resolve(conn, new_id), entry.id


class StoryBatch:
    """What one clustering transaction reads and writes (see ``StoryStore.batch``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def version(self) -> int:
        """Moves on whenever anyone clusters or corrects: a cache older is stale."""
        return stories_version(self.conn)

    def clustered(self) -> int:
        """How many entries are in a story."""
        return int(self.conn.execute(select(func.count()).select_from(story_entries)).scalar_one())

    def pending(self, limit: int) -> list[PendingEntry]:
        """Entries in no story yet, oldest published first."""
        query = _entry_texts().where(entries.c.clustered == false()).limit(limit)
        return [_pending_entry(row) for row in self.conn.execute(query)]

    def pending_count(self) -> int:
        query = select(func.count()).select_from(entries).where(entries.c.clustered == false())
        return int(self.conn.execute(query).scalar_one())

    def postings(self, terms: Iterable[str], low: datetime) -> list[tuple[str, int, float]]:
        """(term, story, weight) for stories holding any of ``terms`` whose last entry
        is not older than ``low``."""
        out: list[tuple[str, int, float]] = []
        wanted = sorted(terms)
        if not wanted:
            return out
        # Every story active since ``low`` has an id at least this: a bound the index
        # (era, term, story_id) can use, so older postings of a term are never read...
        first, last = self.conn.execute(
            select(func.min(stories.c.id), func.max(stories.c.id)).where(
                stories.c.last_published_at >= low
            )
        ).one()
        if first is None:
            return out
        # ...and the index is by era first: each era of the range is sought by term
        # (one or two eras for a live window; an archive entry published long ago
        # widens the range, and costs a seek per era and term).
        eras = list(range(era_of(first), era_of(last) + 1))
        for chunk in _spans(self.conn, wanted):
            query = (
                select(story_terms.c.term, story_terms.c.story_id, story_terms.c.weight)
                .join(stories, stories.c.id == story_terms.c.story_id)
                .where(
                    story_terms.c.era.in_(eras),
                    _in(self.conn, story_terms.c.term, chunk),
                    story_terms.c.story_id >= first,
                    stories.c.last_published_at >= low,
                )
            )
            out.extend((r.term, r.story_id, r.weight) for r in self.conn.execute(query))
        return out

    def centroids(self, story_ids: Iterable[int]) -> list[tuple[str, int, float]]:
        """(term, story, weight): the whole centroids of these stories."""
        out: list[tuple[str, int, float]] = []
        for chunk in _spans(self.conn, sorted(story_ids)):
            query = select(story_terms.c.term, story_terms.c.story_id, story_terms.c.weight).where(
                _in(self.conn, story_terms.c.story_id, chunk)
            )
            out.extend((r.term, r.story_id, r.weight) for r in self.conn.execute(query))
        return out

    def terms_of(self, story_ids: Iterable[int]) -> set[str]:
        """Every term of these stories' centroids."""
        out: set[str] = set()
        for chunk in _spans(self.conn, sorted(story_ids)):
            query = select(story_terms.c.term).where(_in(self.conn, story_terms.c.story_id, chunk))
            out.update(self.conn.execute(query).scalars())
        return out

    def term_counts(self, terms: Iterable[str]) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for chunk in _spans(self.conn, sorted(terms)):
            query = select(term_counts.c.term, term_counts.c.entries).where(
                _in(self.conn, term_counts.c.term, chunk)
            )
            out.extend((r.term, r.entries) for r in self.conn.execute(query))
        return out

    def key_stories(self, keys: Iterable[str]) -> list[tuple[str, int]]:
        """(key, story) for clustered entries holding any of ``keys``."""
        out: list[tuple[str, int]] = []
        for chunk in _spans(self.conn, sorted(keys)):
            query = (
                select(entry_keys.c.key, story_entries.c.story_id)
                .join(story_entries, story_entries.c.entry_id == entry_keys.c.entry_id)
                .where(_in(self.conn, entry_keys.c.key, chunk))
            )
            out.extend((r.key, r.story_id) for r in self.conn.execute(query))
        return out

    def norms(self, story_ids: Iterable[int]) -> dict[int, float]:
        """The stored centroid norms (squared) of these stories."""
        out: dict[int, float] = {}
        for chunk in _spans(self.conn, sorted(story_ids)):
            query = select(stories.c.id, stories.c.norm2).where(_in(self.conn, stories.c.id, chunk))
            out.update((r.id, r.norm2) for r in self.conn.execute(query))
        return out

    def states(self, story_ids: Iterable[int]) -> list[StoryState]:
        out: list[StoryState] = []
        for chunk in _spans(self.conn, sorted(story_ids)):
            query = select(stories).where(
                _in(self.conn, stories.c.id, chunk), stories.c.merged_into.is_(None)
            )
            out.extend(
                StoryState(
                    id=r.id,
                    first=r.first_published_at,
                    last=r.last_published_at,
                    norm2=r.norm2,
                    size=r.size,
                    langs={lang for lang in r.langs.split(",") if lang},
                    names=set(r.names.split()),
                    semantic=from_bytes(r.semantic) if r.semantic else None,
                    semantic_count=r.semantic_count,
                )
                for r in self.conn.execute(query)
            )
        return out

    def apart(self, story_ids: Iterable[int]) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for chunk in _spans(self.conn, sorted(story_ids)):
            query = select(story_apart).where(
                or_(
                    _in(self.conn, story_apart.c.story_id, chunk),
                    _in(self.conn, story_apart.c.other_id, chunk),
                )
            )
            out.extend((r.story_id, r.other_id) for r in self.conn.execute(query))
        return out

    def write(self, changes: Changes, titles: dict[int, str], now: datetime) -> dict[int, int]:
        """Persist one batch; returns the stored ids of the stories it opened."""
        ids = self._insert_stories(changes.new_stories, titles, now)
        if changes.stories:
            columns = list(_story_values(changes.stories[0], now))
            _update_many(
                self.conn,
                stories,
                columns,
                [(*_story_values(story, now).values(), story.id) for story in changes.stories],
            )
        if changes.weights:
            rows = []
            for story_id, term, weight in changes.weights:
                story_id = ids.get(story_id, story_id)
                rows.append((story_id, term, weight, era_of(story_id)))
            _upsert(self.conn, story_terms, ("story_id", "term"), ("weight",), rows, fixed=("era",))
        if changes.df:
            _upsert(self.conn, term_counts, ("term",), ("entries",), list(changes.df.items()))
        _insert_many(
            self.conn,
            story_entries,
            ("entry_id", "story_id", "signal", "similarity", "pinned", "joined_at"),
            [
                (a.entry_id, ids.get(a.story_id, a.story_id), a.signal, a.similarity, False, now)
                for a in changes.assignments
            ],
        )
        for chunk in _spans(self.conn, [a.entry_id for a in changes.assignments]):
            self.conn.execute(
                update(entries).where(_in(self.conn, entries.c.id, chunk)).values(clustered=True)
            )
        _insert_many(self.conn, entry_keys, ("key", "entry_id"), changes.keys, ignore_existing=True)
        for merge in changes.merges:
            absorbed = ids.get(merge.absorbed, merge.absorbed)
            # The survivor's weights written above hold these terms of both already.
            for chunk in _spans(self.conn, sorted(merge.moved_terms)):
                self.conn.execute(
                    delete(story_terms).where(
                        story_terms.c.story_id == absorbed,
                        _in(self.conn, story_terms.c.term, chunk),
                    )
                )
            # ...and its embedding sum too: only the store's part of the merge is left.
            merge_stories(
                self.conn, ids.get(merge.survivor, merge.survivor), absorbed, now, in_memory=True
            )
        if changes.space is not None:
            self.save_space(changes.space)
        _bump_version(self.conn)
        return ids

    def _insert_stories(
        self, new: Sequence[StoryState], titles: dict[int, str], now: datetime
    ) -> dict[int, int]:
        """Store the stories a batch opened; returns their ids by batch id."""
        if not new:
            return {}
        opened = {"created_at": now, "score": 0.0}
        rows = [_story_values(s, now) | opened | {"title": titles[s.id]} for s in new]
        if self.conn.dialect.name == "sqlite":
            # SQLite numbers a row the largest id plus one, and this transaction holds
            # the write lock: the ids are known before the insert, which then needs no
            # RETURNING (SQLAlchemy sends an insert with RETURNING one row at a time
            # here, 30,000 statements for 100,000 entries).
            last = self.conn.execute(select(func.max(stories.c.id))).scalar_one() or 0
            ids = {s.id: last + 1 + i for i, s in enumerate(new)}
            _insert_many(
                self.conn,
                stories,
                ["id", *rows[0]],
                [(ids[s.id], *row.values()) for s, row in zip(new, rows, strict=True)],
            )
            return ids
        returned = self.conn.execute(
            stories.insert().returning(stories.c.id, sort_by_parameter_order=True), rows
        ).all()
        return {s.id: row.id for s, row in zip(new, returned, strict=True)}

    def space(self) -> SemanticSpace:
        """The semantic space as stored (a fresh one on a store that has none yet)."""
        row = self.conn.execute(select(cluster_state).where(cluster_state.c.name == MODEL)).first()
        if row is None:
            return SemanticSpace()
        return SemanticSpace(from_bytes(row.vector), row._mapping["count"])

    def save_space(self, space: SemanticSpace) -> None:
        stmt = _insert(self.conn)(cluster_state)
        self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[cluster_state.c.name],
                set_={"count": stmt.excluded.count, "vector": stmt.excluded.vector},
            ),
            {"name": MODEL, "count": space.count, "vector": to_bytes(space.total)},
        )

    def unindexed(self) -> list[int]:
        """Stories with members but no centroid (after a split): to rebuild."""
        has_terms = select(story_terms.c.story_id).distinct().scalar_subquery()
        query = select(stories.c.id).where(
            stories.c.merged_into.is_(None), stories.c.size > 0, stories.c.id.not_in(has_terms)
        )
        return list(self.conn.execute(query).scalars())

    def member_texts(self, story_id: int) -> list[PendingEntry]:
        """What the clustering reads of a story's entries, oldest published first."""
        query = _entry_texts().join(
            story_entries,
            and_(story_entries.c.entry_id == entries.c.id, story_entries.c.story_id == story_id),
        )
        return [_pending_entry(row) for row in self.conn.execute(query)]

    def set_centroid(self, story: StoryState, weights: dict[str, float]) -> None:
        """Replace a story's centroid (terms, norm, languages, names, embedding sum)."""
        self.conn.execute(delete(story_terms).where(story_terms.c.story_id == story.id))
        if weights:
            self.conn.execute(
                story_terms.insert(),
                [
                    {"story_id": story.id, "term": t, "weight": w, "era": era_of(story.id)}
                    for t, w in weights.items()
                ],
            )
            # Every indexed term keeps a count row (see schema.term_counts): the members'
            # terms are re-derived here with today's feed languages, and may include
            # one no count holds.
            self.conn.execute(
                _insert(self.conn)(term_counts).on_conflict_do_nothing(),
                [{"term": t, "entries": 0} for t in sorted(weights)],
            )
        values = _story_values(story, story.last)
        del values["updated_at"], values["first_published_at"], values["last_published_at"]
        self.conn.execute(update(stories).where(stories.c.id == story.id).values(**values))


def merge_stories(
    conn: Connection, survivor: int, absorbed: int, now: datetime, *, in_memory: bool = False
) -> None:
    """Fold ``absorbed`` into ``survivor``: members, centroid, curator splits, aliases.

    ``in_memory``: the clusterer merged the two already and wrote the survivor's
    embedding sum; otherwise (a curator's merge) the sums are added here.
    """
    if not in_memory:
        _add_semantic(conn, survivor, absorbed)
    conn.execute(
        update(story_entries).where(story_entries.c.story_id == absorbed).values(story_id=survivor)
    )
    insert = _insert(conn)
    moved = insert(story_terms).from_select(
        ["story_id", "term", "weight", "era"],
        select(
            literal(survivor), story_terms.c.term, story_terms.c.weight, literal(era_of(survivor))
        ).where(story_terms.c.story_id == absorbed),
    )
    conn.execute(
        moved.on_conflict_do_update(
            index_elements=[story_terms.c.story_id, story_terms.c.term],
            set_={"weight": story_terms.c.weight + moved.excluded.weight},
        )
    )
    conn.execute(delete(story_terms).where(story_terms.c.story_id == absorbed))
    for column, other in (
        (story_apart.c.story_id, story_apart.c.other_id),
        (story_apart.c.other_id, story_apart.c.story_id),
    ):
        partners = list(conn.execute(select(other).where(column == absorbed)).scalars())
        for partner in partners:
            if partner != survivor:
                conn.execute(
                    insert(story_apart).on_conflict_do_nothing(),
                    {"story_id": survivor, "other_id": partner},
                )
    conn.execute(
        delete(story_apart).where(
            or_(story_apart.c.story_id == absorbed, story_apart.c.other_id == absorbed)
        )
    )
    conn.execute(
        update(stories)
        .where(or_(stories.c.id == absorbed, stories.c.merged_into == absorbed))
        .values(merged_into=survivor, size=0, norm2=0.0, updated_at=now)
    )
    norm2 = conn.execute(
        select(func.coalesce(func.sum(story_terms.c.weight * story_terms.c.weight), 0.0)).where(
            story_terms.c.story_id == survivor
        )
    ).scalar_one()
    rows = {
        row.id: row
        for row in conn.execute(
            select(stories.c.id, stories.c.langs, stories.c.names).where(
                stories.c.id.in_([survivor, absorbed])
            )
        )
    }
    langs = {lang for row in rows.values() for lang in row.langs.split(",") if lang}
    names = with_names(set(rows[survivor].names.split()), rows[absorbed].names.split())
    conn.execute(
        update(stories)
        .where(stories.c.id == survivor)
        .values(norm2=norm2, langs=",".join(sorted(langs)), names=" ".join(sorted(names)))
    )
    _refresh_story(conn, survivor, now)


def _add_semantic(conn: Connection, survivor: int, absorbed: int) -> None:
    rows = {
        row.id: row
        for row in conn.execute(
            select(stories.c.id, stories.c.semantic, stories.c.semantic_count).where(
                stories.c.id.in_([survivor, absorbed])
            )
        )
    }
    if rows[absorbed].semantic is None:
        return
    total: Vector = from_bytes(rows[absorbed].semantic)
    if rows[survivor].semantic is not None:
        total = total + from_bytes(rows[survivor].semantic)
    conn.execute(
        update(stories)
        .where(stories.c.id == survivor)
        .values(
            semantic=to_bytes(total),
            semantic_count=rows[survivor].semantic_count + rows[absorbed].semantic_count,
        )
    )


VERSION = "version"
"""The cluster_state row counting changes to the stories (its ``count``)."""


def stories_version(conn: Connection) -> int:
    """The stories' version: changes with every write to them."""
    query = select(cluster_state.c.count).where(cluster_state.c.name == VERSION)
    return int(conn.execute(query).scalar_one_or_none() or 0)


def outdate_caches(conn: Connection, seen: int) -> None:
    """Move the stories' version past ``seen`` and its own: a clustering cache that
    was in step with a version up to ``seen`` reloads (after a copy replaced the
    stories, whose own version could be any number, that one included)."""
    version = max(stories_version(conn), seen) + 1
    stmt = _insert(conn)(cluster_state)
    conn.execute(
        stmt.on_conflict_do_update(index_elements=[cluster_state.c.name], set_={"count": version}),
        {"name": VERSION, "count": version, "vector": b""},
    )


def _bump_version(conn: Connection) -> None:
    stmt = _insert(conn)(cluster_state)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[cluster_state.c.name],
            set_={"count": cluster_state.c.count + 1},
        ),
        {"name": VERSION, "count": 1, "vector": b""},
    )


def _refresh_story(conn: Connection, story_id: int, now: datetime) -> None:
    """Size and time span of a story from its members."""
    row = conn.execute(
        select(func.count(), func.min(entries.c.published_at), func.max(entries.c.published_at))
        .select_from(story_entries)
        .join(entries, entries.c.id == story_entries.c.entry_id)
        .where(story_entries.c.story_id == story_id)
    ).one()
    values: dict[str, Any] = {"size": row[0], "updated_at": now}
    if row[0]:
        values |= {"first_published_at": row[1], "last_published_at": row[2]}
    conn.execute(update(stories).where(stories.c.id == story_id).values(**values))


def _resolve(conn: Connection, story_id: int) -> StoryRow:
    seen = set()
    while True:
        row = conn.execute(select(stories).where(stories.c.id == story_id)).first()
        if row is None:
            raise UsageError(f"no story {story_id} (see `newsdesk stories`)")
        if row.merged_into is None or row.merged_into in seen:
            return _story_row(row)
        seen.add(story_id)
        story_id = row.merged_into


def _entry_texts() -> Any:
    """The columns the clustering reads of entries, oldest published first."""
    return (
        select(
            entries.c.id,
            entries.c.title,
            entries.c.summary,
            entries.c.content,
            func.coalesce(entries.c.lang, feeds.c.lang).label("lang"),
            entries.c.canonical_url,
            entries.c.published_at,
        )
        .join(feeds, feeds.c.id == entries.c.feed_id)
        .order_by(entries.c.published_at, entries.c.id)
    )


def _pending_entry(row: Any) -> PendingEntry:
    return PendingEntry(
        id=row.id,
        title=row.title,
        text=row.summary or row.content,
        lang=row.lang,
        canonical_url=row.canonical_url,
        published=row.published_at,
    )


def _story_row(row: Any) -> StoryRow:
    return StoryRow(
        id=row.id,
        title=row.title,
        first=row.first_published_at,
        last=row.last_published_at,
        size=row.size,
        merged_into=row.merged_into,
    )


def _semantic_bytes(story: StoryState) -> bytes | None:
    return to_bytes(story.semantic) if story.semantic is not None else None


def _story_values(story: StoryState, now: datetime) -> dict[str, Any]:
    return {
        "first_published_at": story.first,
        "last_published_at": story.last,
        "norm2": story.norm2,
        "size": story.size,
        "langs": ",".join(sorted(story.langs)),
        "names": " ".join(sorted(story.names)),
        "semantic": _semantic_bytes(story),
        "semantic_count": story.semantic_count,
        "updated_at": now,
    }


def _upsert(
    conn: Connection,
    table: Table,
    key: Sequence[str],
    values: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    fixed: Sequence[str] = (),
) -> None:
    """Insert ``rows`` (the ``key`` columns, the ``values`` ones, then the ``fixed``
    ones) into ``table``, or overwrite the values of the rows already there (``fixed``
    columns follow from the key: they are only written with a new row)."""
    q = conn.dialect.identifier_preparer.quote
    columns = [*key, *values, *fixed]
    _driver_many(
        conn,
        table,
        columns,
        f"INSERT INTO {table.name} ({', '.join(map(q, columns))}) VALUES ({{marks}}) "
        f"ON CONFLICT ({', '.join(map(q, key))}) "
        f"DO UPDATE SET {', '.join(f'{q(c)} = excluded.{q(c)}' for c in values)}",
        rows,
    )


def _insert_many(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    ignore_existing: bool = False,
) -> None:
    """Insert ``rows`` (values of ``columns``, in order); rows already there are an error,
    or skipped with ``ignore_existing``."""
    q = conn.dialect.identifier_preparer.quote
    conflict = " ON CONFLICT DO NOTHING" if ignore_existing else ""
    statement = (
        f"INSERT INTO {table.name} ({', '.join(map(q, columns))}) VALUES ({{marks}}){conflict}"
    )
    _driver_many(conn, table, columns, statement, rows)


def _update_many(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Set ``columns`` of the rows whose id is each row's last value."""
    q = conn.dialect.identifier_preparer.quote
    _driver_many(
        conn,
        table,
        [*columns, "id"],
        f"UPDATE {table.name} SET {', '.join(f'{q(c)} = {{mark}}' for c in columns)} "
        "WHERE id = {mark}",
        rows,
    )


def _driver_many(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    statement: str,
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Run ``statement`` once per row through the driver's ``executemany`` (on
    PostgreSQL an ``INSERT ... VALUES ({marks})`` runs once, over arrays).

    A clustering batch writes thousands of rows, and SQLAlchemy's per-row parameter
    handling cost more than the database's own work; plain tuples, converted as Core
    would (:mod:`newsdesk.store.driver`), go straight to the driver.
    ``{marks}`` in the statement becomes one placeholder per column, ``{mark}`` one.
    """
    if not rows:
        return
    mark = driver.mark(conn.dialect)
    processors = [driver.converter(table.c[c].type, conn.dialect) for c in columns]
    if any(processors):
        rows = [
            tuple(v if p is None else p(v) for p, v in zip(processors, row, strict=True))
            for row in rows
        ]
    if conn.dialect.name == "postgresql" and "VALUES ({marks})" in statement:
        # One statement for all the rows, a typed array per column: a row at a time,
        # even pipelined, psycopg's per-row work was a third of the client's CPU in a
        # PostgreSQL catch-up. (Each key is in ``rows`` once, as an ON CONFLICT DO
        # UPDATE may touch a row only once per statement.)
        arrays = ", ".join(
            f"{mark}::{_element_type(table.c[c]).compile(dialect=conn.dialect)}[]" for c in columns
        )
        sql = statement.replace("VALUES ({marks})", f"SELECT * FROM unnest({arrays})")
        conn.exec_driver_sql(sql, tuple(list(column) for column in zip(*rows, strict=True)))
        return
    sql = statement.format(marks=", ".join(mark for _ in columns), mark=mark)
    conn.exec_driver_sql(sql, list(rows))


def _spans(conn: Connection, values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """``values`` in the parts one :func:`_in` condition takes: all of them at once on
    PostgreSQL, ``driver.IN_CHUNK`` at a time on SQLite."""
    if conn.dialect.name == "postgresql":
        return [values] if values else []
    return driver.chunks(values)


def _in(conn: Connection, column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY(%s::type[])``, one parameter:
    the statement's text is the same whatever the count, so psycopg converts it once and
    the server can prepare it, and a batch's thousands of terms go in one query: a
    100,000-entry catch-up took 1.65× SQLite's time instead of 2.23×, server CPU
    63 s -> 44 s (docs/benchmarks.md)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(_element_type(column))))
    return column.in_(values)


def _element_type(column: ColumnElement[Any]) -> TypeEngine[Any]:
    """The type of an array of ``column``'s values: without a length, since a cast to
    ``VARCHAR(80)[]`` cuts longer values silently where the column refuses them."""
    return String() if isinstance(column.type, String) else column.type
