"""What an issue holds: ranked stories + picks + section rules -> a DigestPlan (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from newsdesk.curate import Candidates, curate, excerpt, one_line, shorten
from newsdesk.picks import Pick, Picks, Source
from newsdesk.plan import DigestPlan, Photo, SectionConfig
from newsdesk.ranking import Member, RankedStory, rank

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
PICKS = Path("config/picks.toml")
LEAD = SectionConfig(id="lead", title="Top-Story", kind="featured", auto=1)
NEWS = SectionConfig(id="news", title="KI und Tech News", kind="list", auto=3)
MARKETS = SectionConfig(id="markets", title="Märkte", kind="list", auto=2)
PHOTO = SectionConfig(id="photo", title="AI-Photo des Tages", kind="photo")
TOOLS = SectionConfig(id="tools", title="Apps", kind="tools", min_items=3)

_ids = iter(range(1, 10_000))


def member(host: str, title: str, *, hours: float = 1, section: str | None = None) -> Member:
    n = next(_ids)
    return Member(
        entry_id=n,
        url=f"https://{host}/a/{n}",
        title=title,
        published=NOW - timedelta(hours=hours),
        lang="en",
        feed_name=host.split(".")[0].title(),
        feed_url=f"https://{host}/feed",
        site_url=None,
        section=section,
        weight=1.0,
        priority=0,
    )


def stories(*groups: tuple[int, list[Member]]) -> list[RankedStory]:
    return rank(groups, NOW, timedelta(hours=72))


# Five outlets on the bid, three on the chips, one each on the rest.
BID = (
    1,
    [
        member("wsj.com", "Musk-led group bids $97.4 billion for OpenAI"),
        member("nytimes.com", "Elon Musk offers $97.4 billion for OpenAI"),
        member("cnbc.com", "OpenAI board weighs Musk's $97.4bn offer"),
        member("thehill.com", "Musk makes play for OpenAI"),
        member("heise.de", "Musk bietet 97,4 Milliarden Dollar für OpenAI"),
    ],
)
CHIPS = (
    2,
    [
        member("reuters.com", "Nvidia revenue hits record", section="markets"),
        member("cnbc.com", "Nvidia beats estimates", section="markets"),
        member("handelsblatt.com", "Nvidia steigert Umsatz", section="markets"),
    ],
)
IPAD = (3, [member("theverge.com", "Apple unveils iPad mini"), member("heise.de", "iPad mini")])
STORM = (4, [member("bbc.co.uk", "Storm Bert floods Wales")])
RATES = (5, [member("ft.com", "ECB holds rates", section="markets")])
RANKED = stories(BID, CHIPS, IPAD, STORM, RATES)
BY_ID = {s.id: s for s in RANKED}


def plan(
    picks: Picks | None = None,
    sections: tuple[SectionConfig, ...] = (LEAD, NEWS),
    **candidates: object,
) -> DigestPlan:
    args: dict[str, object] = {"ranked": RANKED, "picked": BY_ID, "summaries": {}}
    args.update(candidates)
    return curate(
        name="KI-Briefing",
        language="de",
        issue_date=date(2026, 11, 30),
        sections=sections,
        picks=picks or Picks(path=PICKS),
        candidates=Candidates(**args),  # type: ignore[arg-type]
    )


def shown(p: DigestPlan) -> dict[str, list[int | None]]:
    return {s.id: [i.story_id for i in s.items] for s in p.sections}


def test_with_no_picks_the_issue_fills_itself_from_the_top_stories() -> None:
    p = plan()
    assert shown(p) == {"lead": [1], "news": [2, 3, 4]}
    assert p.subject == "KI-Briefing: Musk-led group bids $97.4 billion for OpenAI"
    assert (
        p.preheader
        == "Nvidia revenue hits record · Apple unveils iPad mini · Storm Bert floods Wales"
    )
    assert not any(i.picked for s in p.sections for i in s.items)
    assert p.warnings == ()


def test_the_lead_read_on_list_has_one_link_per_outlet_best_source_first() -> None:
    (lead,) = plan().sections[0].items
    assert [link.outlet for link in lead.sources] == ["Wsj", "Nytimes", "Cnbc", "Thehill", "Heise"]
    assert lead.url == lead.sources[0].url


def test_a_curator_pick_replaces_the_auto_lead_and_carries_the_curators_words() -> None:
    pick = Pick(
        index=1,
        section="lead",
        story=2,
        headline="Und immer wieder Nvidia…",
        subheadline="Rekord, schon wieder",
        text=("Erster Absatz.", "Zweiter Absatz."),
        why=("Chips sind knapp.",),
        hide=("cnbc.com",),
    )
    p = plan(Picks(path=PICKS, picks=(pick,)))
    (lead,) = p.sections[0].items
    assert (lead.story_id, lead.headline, lead.subheadline) == (
        2,
        "Und immer wieder Nvidia…",
        "Rekord, schon wieder",
    )
    assert lead.paragraphs == ("Erster Absatz.", "Zweiter Absatz.")
    assert lead.why == ("Chips sind knapp.",)
    assert lead.picked
    assert [link.outlet for link in lead.sources] == ["Reuters", "Handelsblatt"]
    # The top story was not picked, so it is the first one auto-filled into the news.
    assert shown(p)["news"] == [1, 3, 4]
    assert p.subject == "KI-Briefing: Und immer wieder Nvidia…"


def test_a_section_named_by_feeds_fills_only_with_their_stories() -> None:
    p = plan(sections=(LEAD, MARKETS, NEWS), assigned=frozenset({"markets"}))
    # The lead and the news are named by no feed, so they take from every story.
    assert shown(p) == {"lead": [1], "markets": [2, 5], "news": [3, 4]}


def test_picked_items_come_first_in_file_order_and_auto_tops_the_section_up() -> None:
    picks = Picks(
        path=PICKS,
        picks=(Pick(index=1, section="news", story=4), Pick(index=2, section="news", story=3)),
    )
    assert shown(plan(picks))["news"] == [4, 3, 2]


def test_a_story_picked_with_a_skip_tag_is_left_out_of_the_issue_and_the_auto_fill() -> None:
    picks = Picks(path=PICKS, picks=(Pick(index=1, section="news", story=1, tags=("skip",)),))
    assert shown(plan(picks)) == {"lead": [2], "news": [3, 4, 5]}


def test_stories_sent_in_an_earlier_issue_are_not_candidates_again() -> None:
    picks = Picks(path=PICKS, picks=(Pick(index=1, section="news", story=3),))
    p = plan(picks, sent=frozenset({1, 3}))
    assert shown(p) == {"lead": [2], "news": [4, 5]}
    assert p.warnings == ("config/picks.toml: pick[1]: story 3 was sent in an earlier issue",)


def test_a_pick_of_an_unknown_story_is_a_warning_naming_file_and_pick() -> None:
    picks = Picks(path=PICKS, picks=(Pick(index=1, section="lead", story=999),))
    p = plan(picks)
    assert p.warnings == ("config/picks.toml: pick[1]: story 999 not found",)
    assert shown(p)["lead"] == [1]


def test_two_picks_of_stories_merged_since_show_the_story_once() -> None:
    picked = {**BY_ID, 77: BY_ID[1]}  # story 77 was merged into story 1
    picks = Picks(
        path=PICKS,
        picks=(Pick(index=1, section="lead", story=1), Pick(index=2, section="news", story=77)),
    )
    p = plan(picks, picked=picked)
    assert shown(p) == {"lead": [1], "news": [2, 3, 4]}
    assert p.warnings == ("config/picks.toml: pick[2]: story 77 is already in the issue",)


def test_a_section_below_its_minimum_is_reported_so_that_send_holds_the_issue() -> None:
    tools = Picks(
        path=PICKS,
        picks=(Pick(index=1, section="tools", url="https://app.example/", headline="App"),),
    )
    p = plan(tools, sections=(LEAD, TOOLS))
    assert [s.id for s in p.short_sections] == ["tools"]
    assert p.warnings == ("section 'tools' has 1 of at least 3 items: send holds the issue",)


def test_url_picks_and_hand_named_sources() -> None:
    pick = Pick(
        index=1,
        section="tools",
        url="https://notes.example/",
        headline="Notiz",
        text=("Schreibt mit.",),
        sources=(Source(url="https://press.example.org/notiz-review", title="Test"),),
    )
    (item,) = plan(Picks(path=PICKS, picks=(pick,)), sections=(TOOLS,)).sections[0].items
    assert (item.headline, item.url, item.paragraphs, item.story_id) == (
        "Notiz",
        "https://notes.example/",
        ("Schreibt mit.",),
        None,
    )
    assert [(s.outlet, s.title) for s in item.sources] == [("press.example.org", "Test")]


def test_the_photo_goes_to_the_photo_section_or_is_reported() -> None:
    photo = Photo(image="https://img.example/p.jpg", width=600, height=400, alt="Robot")
    with_section = plan(Picks(path=PICKS, photo=photo), sections=(LEAD, PHOTO))
    assert with_section.sections[1].photo is not None
    assert with_section.sections[1].photo.alt == "Robot"
    without = plan(Picks(path=PICKS, photo=photo))
    assert without.warnings == (
        "config/picks.toml: photo: no section of kind 'photo' in newsdesk.toml",
    )


def test_auto_items_show_the_first_sentences_of_the_best_sources_summary() -> None:
    lead_entry = BY_ID[1].lead.entry_id
    summary = (
        "<p>Elon Musk hat ein Angebot abgegeben. Es beträgt 97,4 Milliarden Dollar. "
        "OpenAI lehnt ab. Mehr dazu später.</p>"
    )
    p = plan(summaries={lead_entry: summary})
    assert p.sections[0].items[0].paragraphs == (
        "Elon Musk hat ein Angebot abgegeben. Es beträgt 97,4 Milliarden Dollar. OpenAI lehnt ab.",
    )


def test_excerpts_stop_at_sentences_and_never_exceed_their_length() -> None:
    assert excerpt("One. Two. Three.", 2, 100) == "One. Two."
    assert (
        excerpt("U.S. stocks rose 3.5% today. Bonds fell.", 1, 100)
        == "U.S. stocks rose 3.5% today."
    )
    long = "word " * 100
    assert len(excerpt(long, 2, 50)) <= 50
    assert excerpt(long, 2, 50).endswith("…")
    assert shorten("short", 10) == "short"


def test_text_from_feeds_never_breaks_a_header_line() -> None:
    evil = "Big news\r\nBcc: everyone@example.org\u2028more"
    assert one_line(evil) == "Big news Bcc: everyone@example.org more"
    story = stories((9, [member("evil.example", evil)]))
    p = plan(ranked=story, picked={9: story[0]})
    assert "\n" not in p.subject and "\r" not in p.subject
    assert "\n" not in p.sections[0].items[0].headline


def test_links_leave_tracking_parameters_behind() -> None:
    tracked = replace(member("wsj.com", "Tracked"), url="https://wsj.com/a?id=7&utm_source=rss")
    story = stories((8, [tracked]))
    (item,) = plan(ranked=story, picked={8: story[0]}).sections[0].items
    assert item.url == "https://wsj.com/a?id=7"
    assert [link.url for link in item.sources] == ["https://wsj.com/a?id=7"]
