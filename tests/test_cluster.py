"""Clustering decisions, in memory: the hard cases with small readable fixtures.

The store-backed path (the same decisions, persisted in batches) is in test_stories.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsdesk import signals
from newsdesk.cluster import (
    FIRST,
    SAME_EVENT,
    SAME_TEXT,
    SAME_URL,
    Assignment,
    Clusterer,
    ClusterParams,
    Item,
    StoryState,
    _checkpoint,
    cluster_all,
)
from newsdesk.clustering import url_key
from newsdesk.signals import MAX_TERM, canonical_number, signals_of, strip_outlet_suffix

T0 = datetime(2026, 11, 18, 16, 0, tzinfo=UTC)

# A small background of unrelated news, so term statistics look like a real store's:
# without it every word is as rare as every other.
BACKGROUND = [
    (
        "Fed holds rates steady as inflation cools",
        "The Federal Reserve left interest "
        "rates unchanged on Wednesday and said inflation was easing.",
    ),
    ("Apple unveils new iPad lineup", "Apple announced new tablets with faster chips."),
    ("Storm brings flooding to southern Spain", "Heavy rain caused floods in Valencia."),
    ("Bundestag beschließt Haushalt für 2027", "Der Bundestag hat den Haushalt verabschiedet."),
    (
        "Lufthansa streicht Flüge wegen Streik",
        "Die Gewerkschaft Verdi hat zum Streik aufgerufen, Lufthansa streicht Hunderte Flüge.",
    ),
    ("Champions League: Bayern wins in Paris", "Bayern Munich beat PSG two to one."),
    ("Oil prices climb after OPEC meeting", "Brent crude rose after OPEC kept output cuts."),
    ("Microsoft reports cloud growth", "Microsoft said Azure revenue grew strongly."),
    ("Wahl in Sachsen: CDU knapp vorn", "Die CDU liegt nach der Landtagswahl knapp vorn."),
    ("Google fined by EU regulators", "The European Commission fined Google over ads."),
]


def item(
    n: int,
    title: str,
    summary: str = "",
    *,
    hours: float = 0,
    lang: str | None = None,
    url: str | None = None,
) -> Item:
    return Item(
        entry_id=n,
        published=T0 + timedelta(hours=hours),
        signals=signals_of(title, summary, lang),
        url_key=url_key(url),
    )


def background(start: int = 1000) -> list[Item]:
    return [
        item(start + i, title, text, hours=-200 - i)  # long before: outside every window
        for i, (title, text) in enumerate(BACKGROUND)
    ]


def stories_of(assignments: list[Assignment]) -> dict[int, int]:
    return {a.entry_id: a.story_id for a in assignments}


def together(assignments: list[Assignment], *entry_ids: int) -> bool:
    story = stories_of(assignments)
    return len({story[e] for e in entry_ids}) == 1


# -- signals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("$97.4 billion", "en"),
        ("97,4 Milliarden Dollar", "de"),
        ("97.4bn", "en"),
        ("USD 97.4 bn", "en"),
        ("97,4 Mrd. Dollar", "de"),
    ],
)
def test_one_amount_in_many_spellings_is_one_number(text: str, lang: str) -> None:
    assert canonical_number(text, lang) == "#9.74e10"


def test_a_german_billion_is_an_english_trillion() -> None:
    assert canonical_number("1,2 Billionen Euro", "de") == canonical_number("1.2 trillion", "en")


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("3,5 Prozent", "de", "#3.5%"),
        ("3.5%", "en", "#3.5%"),
        ("1.000 Menschen", "de", "#1e03"),  # a German thousands separator
        ("1,000 people", "en", "#1e03"),  # an English one
        ("12 Monate", "de", None),  # small plain numbers are not news
    ],
)
def test_percentages_and_separators_follow_the_language(
    text: str, lang: str, expected: str | None
) -> None:
    assert canonical_number(text, lang) == expected


def test_names_acronyms_and_numbers_are_strong_ordinary_words_are_not() -> None:
    s = signals_of(
        "Musk-led group makes $97.4 billion bid for OpenAI",
        "The group around Elon Musk wants control of OpenAI.",
        "en",
    )
    assert {"musk", "openai", "#9.74e10"} <= s.strong
    assert "group" in s.terms and "group" not in s.strong


GLUED = "Grundstuecksverkehrsgenehmigungszustaendigkeitsuebertragungsverordnung" * 3


def test_a_word_longer_than_the_index_holds_is_cut_and_a_pair_that_long_left_out() -> None:
    s = signals_of(f"Landtag debates {GLUED} again", f"The {GLUED} was {GLUED[:50]} news.", "en")
    assert max(map(len, s.terms)) <= MAX_TERM
    assert GLUED[:MAX_TERM].lower() in s.terms
    assert "~landtag_debate" in s.terms
    assert not any(t.startswith("~debate_grund") for t in s.terms)
    # Cut the same way in every entry: two entries with the word still share it.
    assert s.terms.keys() & signals_of(f"{GLUED} passes", "", "en").terms.keys()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_text_splits_into_the_same_words_by_the_fast_pattern(text: str) -> None:
    assert signals._ASCII_WORD_SPLIT_RE.split(text) == signals._WORD_SPLIT_RE.split(text)


WORDS = ["die", "und", "the", "of", "DER", "Über", "Straße", "Zürich", "x1", "2,5", "$3", "—"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS)).map(" ".join))
def test_the_quick_paths_read_text_as_the_full_ones_did(text: str) -> None:
    # No digit: no numbers, the text as it was; the language counts as before.
    numbers, rest = signals._numbers(text, "de")
    if not any(c.isdigit() for c in text):
        assert (numbers, rest) == ([], text)
    words = [w.casefold() for w in text.split()[:200]]
    de = sum(w in signals._LANG_HINTS["de"] for w in words) + any(c in text for c in "äöüßÄÖÜ")
    en = sum(w in signals._LANG_HINTS["en"] for w in words)
    assert signals._language(None, text) == ("" if de == en else "de" if de > en else "en")


def test_a_capital_at_the_start_of_a_sentence_is_not_a_name_by_itself() -> None:
    s = signals_of("Prices rise again", "Shoppers pay more.", "en")
    assert "price" in s.terms and "price" not in s.strong


def test_headline_style_capitals_do_not_make_every_word_a_name() -> None:
    s = signals_of("Fed Official Says Weak Data Caused By Weather", "", "en")
    assert "weather" in s.terms and "weather" not in s.strong


def test_the_outlet_suffix_is_not_part_of_the_news() -> None:
    assert strip_outlet_suffix("Musk bids for OpenAI - Reuters") == "Musk bids for OpenAI"
    assert (
        strip_outlet_suffix("KI-Gesetz tritt in Kraft | heise online") == "KI-Gesetz tritt in Kraft"
    )
    # A dash inside a short headline stays.
    assert strip_outlet_suffix("Brexit - what now") == "Brexit - what now"


def test_double_encoded_utf8_is_repaired_before_reading() -> None:
    s = signals_of("MÃ¼nchen: Siemens baut Stellen ab", "", "de")
    assert "munch" in s.terms or "munchen" in s.terms


# -- layer 2: the same article across feeds ----------------------------------------------


def test_a_wire_copy_syndicated_by_five_feeds_is_one_story() -> None:
    wire = (
        "Musk-led group makes $97.4 billion bid for OpenAI",
        "A consortium led by Elon Musk offered $97.4 billion on Monday to buy the "
        "nonprofit that controls OpenAI, escalating his fight with Sam Altman.",
    )
    copies = [
        item(1, wire[0] + " - Reuters", wire[1], url="https://reuters.com/a1"),
        item(2, wire[0], wire[1], hours=0.5, url="https://nasdaq.com/articles/a1"),
        item(3, wire[0] + " | Yahoo Finance", wire[1], hours=1, url="https://yahoo.com/x"),
        item(4, wire[0], wire[1] + " Read more.", hours=2, url="https://marketscreener.com/y"),
        # A copy whose headline was rewritten: the lede still gives it away.
        item(5, "OpenAI gets a $97.4bn offer", wire[1], hours=3, url="https://example.net/z"),
    ]
    result = cluster_all([*background(), *copies])
    assert together(result, 1, 2, 3, 4, 5)
    signals = {a.entry_id: a.signal for a in result}
    assert signals[1] == FIRST
    assert {signals[n] for n in (2, 3, 4, 5)} == {SAME_TEXT}


def test_the_same_url_in_two_feeds_is_one_story_whatever_the_headlines() -> None:
    a = item(1, "Quarterly results", url="https://example.com/q3?utm_source=rss")
    b = item(2, "Numbers are in", hours=1, url="https://example.com/q3?utm_source=rss")
    result = cluster_all([a, b])
    assert together(result, 1, 2)
    assert result[1].signal == SAME_URL


# -- layer 3: the same event ------------------------------------------------------------


def test_an_entity_heavy_english_headline_joins_the_long_german_article() -> None:
    german = item(
        1,
        "Und immer wieder Elon Musk: 97,4 Milliarden Dollar für OpenAI",
        "Ein Konsortium um Tesla-Chef Elon Musk will die gemeinnützige Organisation "
        "hinter OpenAI für 97,4 Milliarden Dollar übernehmen. Sam Altman, Chef von "
        "OpenAI, lehnte das Angebot ab und spottete auf der Plattform X über Musk. "
        "Der Streit zwischen den beiden Gründern schwelt seit Jahren; Musk hatte OpenAI "
        "2015 mitgegründet und verklagt das Unternehmen inzwischen.",
        lang="de",
    )
    english = item(2, "Musk bids $97.4bn for OpenAI; Altman says no", hours=2, lang="en")
    result = cluster_all([*background(), german, english])
    assert together(result, 1, 2)
    assert result[-1].signal == SAME_EVENT


def test_two_stories_about_the_same_company_in_one_week_stay_apart() -> None:
    bid = [
        item(
            1,
            "Musk-led group makes $97.4 billion bid for OpenAI",
            "Elon Musk and investors offered $97.4 billion for the OpenAI nonprofit.",
        ),
        item(2, "OpenAI board weighs Musk's $97.4bn offer", hours=3),
    ]
    launch = [
        item(
            3,
            "OpenAI launches GPT-5 with a new reasoning mode",
            "OpenAI released GPT-5 on Thursday, saying the model reasons step by step.",
            hours=60,
        ),
        item(4, "GPT-5 is here: what OpenAI's new model can do", hours=62),
    ]
    result = cluster_all([*background(), *bid, *launch])
    assert together(result, 1, 2)
    assert together(result, 3, 4)
    assert not together(result, 1, 3)


def test_ordinary_words_alone_do_not_make_one_event() -> None:
    texas = item(
        1,
        "Flash floods destroy homes as heavy rain hits Houston",
        "Rescue crews in Houston, Texas pulled residents from flooded homes.",
    )
    kerala = item(
        2,
        "Flash floods destroy homes as heavy rain hits Kochi",
        "Rescue crews in Kochi, Kerala pulled residents from flooded homes.",
        hours=2,
    )
    houston = item(
        3,
        "Houston floods: heavy rain destroys homes",
        "In Texas, crews rescued residents of flooded homes in Houston.",
        hours=3,
    )
    result = cluster_all([*background(), texas, kerala, houston])
    assert not together(result, 1, 2)  # the same words, other places
    assert together(result, 1, 3)  # the same words and the same places


def test_the_window_is_measured_from_the_published_time_not_from_now() -> None:
    params = ClusterParams(window=timedelta(hours=48))
    first = item(1, "Musk-led group makes $97.4 billion bid for OpenAI")
    soon = item(2, "OpenAI board weighs Musk's $97.4bn offer", hours=20)
    months_later = item(3, "OpenAI board weighs Musk's $97.4bn offer again", hours=24 * 90)
    result = cluster_all([*background(), first, soon, months_later], params)
    assert together(result, 1, 2)
    assert not together(result, 1, 3)


def test_a_bridging_entry_merges_two_stories() -> None:
    # Two halves of one event, opened apart; the third entry covers both.
    params = ClusterParams(threshold=0.3, merge_threshold=0.3)
    a = item(1, "Volkswagen to close Osnabrück plant", "VW will shut the Osnabrück factory.")
    b = item(2, "IG Metall calls strike at Wolfsburg", "Workers in Wolfsburg walk out.", hours=1)
    bridge = item(
        3,
        "VW: Osnabrück plant closure triggers IG Metall strike in Wolfsburg",
        "Volkswagen plans to shut Osnabrück; IG Metall workers in Wolfsburg strike.",
        hours=2,
    )
    before = cluster_all([*background(), a, b], params)
    assert not together(before, 1, 2)
    after = cluster_all([*background(), a, b, bridge], params)
    assert together(after, 1, 2, 3)


def test_the_same_entries_in_the_same_order_give_the_same_stories() -> None:
    entries = [
        *background(),
        item(1, "Musk-led group makes $97.4 billion bid for OpenAI"),
        item(2, "OpenAI board weighs Musk's $97.4bn offer", hours=3),
        item(3, "Apple unveils new iPad lineup", hours=4),
    ]
    assert cluster_all(entries) == cluster_all(list(reversed(entries)))


def test_similarity_is_symmetric_and_one_for_identical_text() -> None:
    clusterer = Clusterer()
    a = signals_of("Musk bids for OpenAI", "A consortium offered billions.", "en")
    b = signals_of("OpenAI rejects Musk", "The board said no.", "en")
    assert clusterer.similarity(a, a) == pytest.approx(1.0)
    assert clusterer.similarity(a, b) == pytest.approx(clusterer.similarity(b, a))
    assert 0 < clusterer.similarity(a, b) < 1


def test_even_a_grown_story_does_not_take_an_entry_that_shares_none_of_its_names() -> None:
    # Four outlets on the Houston floods; then the same words about Kochi.
    reports = [
        item(1, "Heavy rain floods homes in Houston", hours=0),
        item(2, "Homes flooded as heavy rain hits Houston", hours=1),
        item(3, "Houston homes under water after heavy rain", hours=2),
        item(4, "Heavy rain: floods reach homes in Houston", hours=3),
    ]
    kochi = item(5, "Heavy rain floods homes in Kochi", hours=4)
    result = cluster_all([*background(), *reports, kochi])
    assert together(result, 1, 2, 3, 4)
    assert not together(result, 1, 5)


def test_a_story_of_one_entry_takes_no_second_look_at_its_batch() -> None:
    # Settling compares a story with its closest neighbour at sizes 2 to 8, then powers
    # of two. An entry that opened its own story was compared with every story already
    # when it was assigned: a second look would double the work of settling.
    assert [size for size in range(1, 70) if _checkpoint(size)] == [2, 3, 4, 5, 6, 7, 8, 16, 32, 64]


def test_pruning_the_cache_forgets_the_words_only_pruned_stories_held() -> None:
    # The daemon keeps its clusterer from one fetch round to the next: what the window
    # has left behind must leave memory, words included, or the cache grows for ever.
    clusterer = Clusterer()
    stored = iter(range(1, 10))
    for entry in (
        item(1, "Volcano erupts near Grindavik", hours=-100),
        item(2, "Grindavik residents return home", hours=0),
    ):
        clusterer.assign(entry)
        clusterer.settle()
        clusterer.renumber({s.id: next(stored) for s in clusterer.changes().new_stories})
    assert {"volcano", "grindavik", "resident"} <= clusterer.df.keys()

    clusterer.prune(T0 - timedelta(hours=50))  # after the eruption's story, before the other

    assert "volcano" not in clusterer.df and "volcano" not in clusterer.postings
    assert clusterer.df["grindavik"] == 2  # both entries counted it; one story still holds it
    assert set(clusterer.postings["grindavik"]) == {2}


def test_pruning_forgets_the_keys_of_a_story_merged_into_a_pruned_one() -> None:
    # A same-article key names the story its entry joined; that story was merged into
    # another this run, and the window left the survivor behind. The key must be asked
    # for again (the store then leads to the survivor, loaded whole), not stay known with
    # nowhere to go: a late copy of the article would open a story of its own.
    clusterer = Clusterer()
    clusterer.load(
        terms={"volcano"},
        postings=[("volcano", 1, 0.6), ("volcano", 2, 0.8)],
        df=[("volcano", 2)],
        keys={"k:copy"},
        key_stories=[("k:copy", 2)],
        stories=[StoryState(1, T0, T0, 0.36, 1), StoryState(2, T0, T0, 0.64, 1)],
    )
    assert clusterer._merge(1, 2, entry_id=99) == 1  # the older survives; the key named 2
    clusterer.changes()

    clusterer.prune(T0 + timedelta(hours=1))

    assert not clusterer.stories
    assert "k:copy" not in clusterer.key_story
    assert "k:copy" not in clusterer._known_keys  # asked for again
    assert clusterer._merged_into == {}


def test_a_long_articles_candidates_do_not_depend_on_how_far_back_the_cache_reaches() -> None:
    # An entry with more terms than `candidate_terms` proposes stories through its
    # rarest ones, by document frequency. A cache that still holds an old story for one
    # of them (a daemon's, or a long catch-up's) must choose the same terms as a cache
    # loaded fresh for this entry's window, which holds no story for it.
    params = ClusterParams(candidate_terms=1)
    entry = item(9, "Grindavik lava", hours=0)
    old = StoryState(1, T0 - timedelta(days=30), T0 - timedelta(days=30), 1.0, 1)
    recent = StoryState(2, T0 - timedelta(hours=2), T0 - timedelta(hours=2), 1.0, 1)

    def decide(cached_old: bool) -> Assignment:
        clusterer = Clusterer(params, documents=2000)
        postings = [("lava", 2, 1.0)] + ([("grindavik", 1, 1.0)] if cached_old else [])
        clusterer.load(
            terms={"grindavik", "lava"},
            postings=postings,
            df=[("grindavik", 1), ("lava", 30)],
            stories=[recent, *([old] if cached_old else [])],
        )
        return clusterer.assign(entry)

    assert decide(cached_old=True).story_id == decide(cached_old=False).story_id


def test_settling_does_not_depend_on_how_much_of_a_stored_story_is_in_memory() -> None:
    """Two new stories of a batch meet through a bridging entry, and the pair's second
    look merges it into a stored story. The store loads only the postings of the
    batch's terms (and whole centroids of the stories named before settling), so that
    stored story's Svartsengi words may or may not be in memory, depending on what the
    cache held. The second story's checkpoint must not become a look at the stored one
    (it would find the Svartsengi story only when those words happen to be cached):
    cold rounds and a kept cache would part ways."""
    params = ClusterParams(threshold=0.5, merge_threshold=0.3, story_merge_threshold=0.15)
    eruption = [
        "Lava flows into Grindavik streets",
        "Magma tunnel under Svartsengi widens, experts warn",
    ] * 5
    power_plant = [
        "Magma tunnel under Svartsengi widens, experts warn",
        "Svartsengi power plant protected by new walls",
        "Svartsengi plant walls hold as magma tunnel widens",
    ]
    batch = [
        item(11, "Lava reaches Grindavik streets, homes burn", hours=0),
        item(12, "Grindavik evacuated as lava nears town", hours=0.5),
        item(13, "Lava reaches Grindavik: homes burn, town evacuated", hours=1),  # bridges
        item(14, "Grindavik evacuated again as lava nears", hours=1.5),
    ]
    batch_terms = {term for entry in batch for term in entry.signals.terms}

    def stored(
        story_id: int, titles: list[str], hours: float
    ) -> tuple[StoryState, dict[str, float]]:
        vectors = [Clusterer(params, documents=2000).vector(item(0, t).signals) for t in titles]
        centroid: dict[str, float] = {}
        for vector in vectors:
            for term, weight in vector.items():
                centroid[term] = centroid.get(term, 0.0) + weight
        when = T0 + timedelta(hours=hours)
        names = {name for t in titles for name in item(0, t).signals.strong}
        norm2 = sum(w * w for w in centroid.values())
        return StoryState(story_id, when, when, norm2, len(titles), names=names), centroid

    def settle(whole: bool) -> tuple[list[tuple[int, int]], dict[int, int]]:
        clusterer = Clusterer(params, documents=2000)
        rows, terms = [], set(batch_terms)
        for story, centroid in (stored(1, eruption, -2), stored(2, power_plant, -1)):
            rows += [(t, story.id, w) for t, w in centroid.items() if whole or t in batch_terms]
            terms |= centroid.keys() if whole else set()
            clusterer.load(stories=[story])
        clusterer.load(terms=terms, postings=rows, df=[(t, 3) for t in terms])
        for entry in batch:
            clusterer.assign(entry)
        clusterer.settle()
        changes = clusterer.changes()
        merges = [(m.survivor, m.absorbed) for m in changes.merges]
        return merges, {a.entry_id: a.story_id for a in changes.assignments}

    whole, partial = settle(whole=True), settle(whole=False)
    assert whole == partial
    merges, stories = partial
    assert set(stories.values()) == {1}  # the batch's stories joined the eruption's
    assert merges == []  # ...and the power plant's story stays apart
