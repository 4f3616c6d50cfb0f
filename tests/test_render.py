"""The digest renderer: email-proof HTML, a real text part, the archive, template errors.

HTML is read back with the standard library's parser, as a mail client would see it.
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from digest_samples import (
    HTML_LOOKALIKE,
    ONLINE_URL,
    UNSUBSCRIBE_URL,
    all_read_on_links,
    sample_plan,
    with_sections,
)
from newsdesk.errors import ConfigError, TemplateError
from newsdesk.labels import load_labels
from newsdesk.plan import ArchivedIssue, DigestPlan, Item, Link, Section
from newsdesk.render import HTML_SIZE_LIMIT, RenderedIssue, Renderer, check_templates

ATOM = "{http://www.w3.org/2005/Atom}"


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parents: tuple[str, ...]


@dataclass
class Page(HTMLParser):
    """Every element with its attributes and ancestors, the text, and the <style> blocks."""

    elements: list[Element] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    headings: list[str] = field(default_factory=list)
    """The text of every h2: the section titles."""
    open: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, {k: v or "" for k, v in attrs}, tuple(self.open)))
        if tag == "h2":
            self.headings.append("")
        if tag not in ("meta", "img", "br", "link", "hr"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            del self.open[len(self.open) - 1 - self.open[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1] == "style":
            self.styles.append(data)
        else:
            self.text.append(data)
        if "h2" in self.open:
            self.headings[-1] += data

    def all(self, tag: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag]

    @property
    def body_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def render(
    plan: DigestPlan | None = None,
    *,
    language: str = "de",
    labels: dict[str, str] | None = None,
    folder: Path | None = None,
) -> RenderedIssue:
    renderer = Renderer(
        language=language, labels=load_labels(language, overrides=labels), folder=folder
    )
    plan = plan or sample_plan(language)
    return renderer.issue(plan, unsubscribe_url=UNSUBSCRIBE_URL, online_url=ONLINE_URL)


@dataclass(frozen=True)
class Sample:
    plan: DigestPlan
    issue: RenderedIssue


@pytest.fixture(scope="module", params=["de", "en"])
def sample(request: pytest.FixtureRequest) -> Sample:
    """The full sample issue, rendered once per language."""
    return Sample(sample_plan(request.param), render(language=request.param))


@pytest.fixture(scope="module")
def issue(sample: Sample) -> RenderedIssue:
    return sample.issue


# -- what an email client gets -----------------------------------------------------------


def test_the_email_has_no_scripts_forms_stylesheets_or_remote_fonts(
    issue: RenderedIssue,
) -> None:
    page = parse(issue.html)
    tags = {e.tag for e in page.elements}
    assert not tags & {"script", "form", "iframe", "object", "embed", "input"}
    assert page.all("link") == []
    css = "\n".join(page.styles)
    assert "@import" not in css and "@font-face" not in css and "url(" not in css
    assert "fonts.googleapis" not in issue.html


def test_every_image_has_alt_width_height_and_scales_down(issue: RenderedIssue) -> None:
    images = parse(issue.html).all("img")
    assert len(images) == 1  # the photo of the day
    for img in images:
        assert img.attrs["alt"].strip()
        assert int(img.attrs["width"]) == 550 and int(img.attrs["height"]) == 367
        assert img.attrs["border"] == "0"
        style = img.attrs["style"].replace(" ", "")
        assert "max-width:100%" in style and "height:auto" in style


def test_every_style_is_inline_and_only_media_queries_stay_in_the_head(
    issue: RenderedIssue,
) -> None:
    page = parse(issue.html)
    assert [e for e in page.elements if "class" in e.attrs] == []
    styles = page.all("style")
    assert len(styles) == 1 and styles[0].parents == ("html", "head")
    css = re.sub(r"/\*.*?\*/", "", page.styles[0], flags=re.S)
    assert top_level_blocks(css) and all(b.startswith("@media") for b in top_level_blocks(css))
    styled = {"body", "table", "td", "h1", "h2", "h3", "p", "a", "span", "strong", "img", "div"}
    unstyled = [
        (e.tag, e.attrs) for e in page.elements if e.tag in styled and not e.attrs.get("style")
    ]
    assert unstyled == []


def top_level_blocks(css: str) -> list[str]:
    """The text before each top-level ``{`` of a stylesheet: selectors and at-rules."""
    blocks, depth, start = [], 0, 0
    for i, char in enumerate(css):
        if char == "{":
            if depth == 0:
                blocks.append(css[start:i].strip())
            depth += 1
        elif char == "}":
            depth -= 1
            start = i + 1
    return blocks


def test_layout_is_a_fluid_600px_table_container(issue: RenderedIssue) -> None:
    page = parse(issue.html)
    tables = page.all("table")
    assert tables and all(t.attrs.get("role") == "presentation" for t in tables)
    containers = [t for t in tables if "max-width:600px" in t.attrs["style"].replace(" ", "")]
    assert len(containers) == 1 and containers[0].attrs["width"] == "100%"
    assert "@media" in page.styles[0] and "max-width: 480px" in page.styles[0]


def test_the_head_declares_language_charset_viewport_and_subject() -> None:
    issue = render(language="de")
    page = parse(issue.html)
    assert page.all("html")[0].attrs["lang"] == "de"
    metas = page.all("meta")
    assert any(m.attrs.get("charset", "").lower() == "utf-8" for m in metas)
    assert any(m.attrs.get("name") == "viewport" for m in metas)
    assert f"<title>{issue.subject}</title>" in issue.html
    assert issue.subject == sample_plan("de").subject


def test_the_preheader_is_hidden_and_padded_so_no_body_text_leaks_into_the_preview() -> None:
    issue = render(language="de")
    page = parse(issue.html)
    first = next(e for e in page.elements if e.parents[-1:] == ("body",))
    assert first.tag == "div"
    style = first.attrs["style"].replace(" ", "")
    for rule in ("display:none", "max-height:0", "overflow:hidden", "mso-hide:all"):
        assert rule in style
    preview = next(t for t in page.text if t.startswith(issue.preheader))
    assert preview.count("\u200c\u00a0") >= 50  # &zwnj;&nbsp;


def test_header_shows_the_issue_date_in_the_newsletter_language() -> None:
    assert "7. Dezember 2026" in parse(render(language="de").html).body_text
    assert "December 7, 2026" in parse(render(language="en").html).body_text


def test_footer_links_view_online_and_unsubscribe() -> None:
    page = parse(render(language="de").html)
    links = {e.attrs["href"] for e in page.all("a")}
    assert UNSUBSCRIBE_URL in links and ONLINE_URL in links  # "&" survives as &amp;
    text = page.body_text
    assert "Abmelden" in text and "Im Browser lesen" in text
    assert "Du erhältst KI-Briefing, weil du ihn abonniert hast." in text

    without_online = Renderer(language="de", labels=load_labels("de")).issue(
        sample_plan("de"), unsubscribe_url=UNSUBSCRIBE_URL
    )
    assert "Im Browser lesen" not in without_online.html
    assert "Im Browser lesen" not in without_online.text


def test_the_full_issue_stays_under_the_size_limit(issue: RenderedIssue) -> None:
    assert issue.size == len(issue.html.encode())
    assert issue.size < HTML_SIZE_LIMIT
    assert issue.warnings == ()


def test_every_section_title_and_story_shows(sample: Sample) -> None:
    plan, page = sample.plan, parse(sample.issue.html)
    assert page.headings == [s.title for s in plan.sections]
    text = page.body_text
    for section in plan.sections:
        for item in section.items:
            assert " ".join(item.headline.split()) in text
    links = {e.attrs["href"] for e in page.all("a")}
    assert {link.url for link in all_read_on_links(plan)} <= links


# -- feed text stays text ----------------------------------------------------------------


def test_feed_text_is_escaped_not_interpreted() -> None:
    plan = sample_plan("de")
    attack = Item(
        headline="<script>alert('x')</script> & <img src=x onerror=alert(1)>",
        paragraphs=('"quoted" <i>text</i>',),
        url="https://example.org/a?b=1&c=2",
    )
    news = Section("news", "Kurz notiert", "list", items=(attack,))
    issue = render(with_sections(plan, *plan.sections[:1], news))
    page = parse(issue.html)
    assert page.all("script") == [] and page.all("i") == []
    assert len(page.all("img")) == 0
    assert "<script>alert('x')</script> & <img src=x onerror=alert(1)>" in page.body_text
    assert HTML_LOOKALIKE in page.body_text and page.all("b") == []
    assert {"https://example.org/a?b=1&c=2"} <= {e.attrs["href"] for e in page.all("a")}
    assert "<script>alert('x')</script>" in issue.text  # the text part is plain text


def test_links_a_reader_should_not_follow_are_dropped_with_a_warning() -> None:
    plan = sample_plan("de")
    item = Item(
        headline="Harmlos",
        paragraphs=("Text.",),
        url="javascript:alert(1)",
        sources=(
            Link("Evil", "Klick", "data:text/html,hi"),
            Link("Gut", "Ok", "https://ok.example/"),
        ),
    )
    featured = Section("lead", "Top-Thema", "featured", items=(item,))
    issue = render(with_sections(plan, featured))
    hrefs = [e.attrs.get("href", "") for e in parse(issue.html).all("a")]
    assert not any(h.startswith(("javascript:", "data:")) for h in hrefs)
    assert "https://ok.example/" in hrefs
    assert len(issue.warnings) == 2 and all("not an http(s) URL" in w for w in issue.warnings)


# -- sections and labels -------------------------------------------------------------------


def test_empty_sections_are_left_out() -> None:
    plan = sample_plan("de")
    empty = Section("quiet", "Leere Rubrik", "list")
    no_photo = Section("photo", "Kein Foto", "photo")
    issue = render(with_sections(plan, plan.sections[0], empty, no_photo))
    assert "Leere Rubrik" not in issue.html and "Kein Foto" not in issue.html
    assert "LEERE RUBRIK" not in issue.text and "KEIN FOTO" not in issue.text
    assert "Top-Thema" in issue.html


def test_labels_from_the_mapping_replace_the_shipped_ones() -> None:
    issue = render(labels={"read_on": "Mehr dazu, bitte:", "unsubscribe": "Tschüss"})
    text = parse(issue.html).body_text
    assert "Mehr dazu, bitte:" in text and "Weiterlesen:" not in text
    assert "Tschüss" in text
    assert "Mehr dazu, bitte:" in issue.text


def test_unknown_placeholders_in_a_label_are_left_as_they_are() -> None:
    issue = render(labels={"footer": "{newsletter} kommt zu {name}, {whoever}."})
    assert "KI-Briefing kommt zu {name}, {whoever}." in parse(issue.html).body_text


def test_a_curator_template_replaces_the_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "tools.html.j2").write_text(
        "{% for item in section.items %}<p>Werkzeug: {{ item.headline }}</p>{% endfor %}\n",
        encoding="utf-8",
    )
    page = parse(render(folder=tmp_path).html)
    assert "Werkzeug: Ollama" in page.body_text
    assert "Werkzeug: Docling" in page.body_text
    assert "https://ollama.com/" not in {e.attrs.get("href") for e in page.all("a")}
    assert "Und immer wieder Elon Musk…" in page.body_text  # the other partials still ship


# -- template errors name file and line -------------------------------------------------------


def test_the_shipped_templates_compile() -> None:
    assert check_templates(None) == []


def test_check_templates_names_the_file_and_line_of_a_syntax_error(tmp_path: Path) -> None:
    broken = tmp_path / "partials" / "list.html.j2"
    broken.parent.mkdir()
    broken.write_text("<p>\n{{ item.headline }}\n{% if %}\n</p>\n", encoding="utf-8")
    (tmp_path / "digest.txt.j2").write_text('{% include "partials/nope.txt.j2" %}\n')
    problems = check_templates(tmp_path)
    assert len(problems) == 2
    assert (
        problems[0] == f"{tmp_path / 'digest.txt.j2'}:1: template 'partials/nope.txt.j2' not found"
    )
    assert problems[1].startswith(f"{broken}:3: ")


def test_a_syntax_error_at_render_time_is_a_template_error(tmp_path: Path) -> None:
    (tmp_path / "partials").mkdir()
    broken = tmp_path / "partials" / "photo.html.j2"
    broken.write_text("<p>\n{% for x in %}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=rf"^{re.escape(str(broken))}:2: "):
        render(folder=tmp_path)


def test_an_undefined_variable_at_render_time_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "partials").mkdir()
    broken = tmp_path / "partials" / "featured.html.j2"
    broken.write_text(
        "{% for item in section.items %}\n<h3>{{ item.headline }}</h3>\n<p>{{ item.teaser }}</p>\n"
        "{% endfor %}\n",
        encoding="utf-8",
    )
    with pytest.raises(TemplateError) as caught:
        render(folder=tmp_path)
    assert str(caught.value).startswith(f"{broken}:3: ")
    assert "teaser" in str(caught.value)


def test_a_label_the_labels_lack_names_the_template_line(tmp_path: Path) -> None:
    (tmp_path / "partials").mkdir()
    broken = tmp_path / "partials" / "tools.txt.j2"
    broken.write_text("{{ t('no_such_label') }}\n", encoding="utf-8")
    with pytest.raises(
        TemplateError, match=rf"^{re.escape(str(broken))}:1: no label 'no_such_label'"
    ):
        render(folder=tmp_path)


def test_an_unknown_language_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="xx-Nowhere"):
        Renderer(language="xx-Nowhere", labels=load_labels("en"))


# -- the text part -------------------------------------------------------------------------


def test_the_text_part_holds_every_headline_and_unbroken_url(sample: Sample) -> None:
    plan, issue = sample.plan, sample.issue
    flat = " ".join(issue.text.split())
    for section in plan.sections:
        assert section.title.upper() in issue.text
        for item in section.items:
            assert item.headline in flat
    lines = [line.strip() for line in issue.text.splitlines()]
    for link in all_read_on_links(plan):
        assert link.url in lines  # on a line of its own, whole
    assert UNSUBSCRIBE_URL in lines and ONLINE_URL in lines


def test_the_text_part_is_wrapped_and_reads_like_text(sample: Sample) -> None:
    issue = sample.issue
    lines = issue.text.splitlines()
    too_long = [line for line in lines if len(line) > 78 and "://" not in line]
    assert too_long == []
    assert "<p" not in issue.text and "style=" not in issue.text
    # headings are underlined as long as they are
    for above, below in itertools.pairwise(lines):
        if below and set(below) in ({"="}, {"-"}) and above:
            assert len(below) == len(above), (above, below)
    lead = sample.plan.sections[0].items[0]
    assert "- " + lead.why[0][:20] in issue.text  # bullets
    assert issue.text.endswith("\n") and "\n\n\n" not in issue.text


# -- oversize --------------------------------------------------------------------------------


def test_an_issue_over_the_size_limit_warns_with_its_size() -> None:
    plan = sample_plan("en")
    long = "This paragraph goes on and on about nothing in particular. " * 40
    huge = Item(headline="A very long read", paragraphs=(long,) * 40)
    issue = render(
        with_sections(plan, Section("bg", "Background", "background", items=(huge,))), language="en"
    )
    assert issue.size > HTML_SIZE_LIMIT
    [warning] = issue.warnings
    assert f"{issue.size:,} bytes" in warning and "90 KB" in warning


# -- the archive -------------------------------------------------------------------------------

ARCHIVE = [
    ArchivedIssue(
        "2026-11-30",
        "KI-Briefing: Chips & <Zölle>",
        "Was die Woche brachte",
        date(2026, 11, 30),
        datetime(2026, 11, 30, 6, 0, tzinfo=UTC),
    ),
    ArchivedIssue(
        "2026-12-07",
        "KI-Briefing: Und immer wieder Elon Musk…",
        "xAI, Grok & die EU",
        date(2026, 12, 7),
        datetime(2026, 12, 7, 6, 0, tzinfo=UTC),
    ),
    ArchivedIssue(
        "2026-11-23", "KI-Briefing: Start", "", date(2026, 11, 23), datetime(2026, 11, 23, 6, 0)
    ),
]


def test_the_archive_index_lists_issues_newest_first() -> None:
    renderer = Renderer(language="de", labels=load_labels("de"))
    page = parse(renderer.archive_index(ARCHIVE, name="KI-Briefing", base_url="https://k.example/"))
    hrefs = [e.attrs["href"] for e in page.all("a") if "/archive/2026" in e.attrs["href"]]
    assert hrefs == [
        "https://k.example/archive/2026-12-07.html",
        "https://k.example/archive/2026-11-30.html",
        "https://k.example/archive/2026-11-23.html",
    ]
    assert "KI-Briefing: Chips & <Zölle>" in page.body_text
    assert "KI-Briefing: alle Ausgaben" in page.body_text
    assert "30. November 2026" in page.body_text
    assert page.all("script") == []


def test_the_archive_feed_is_atom_with_one_entry_per_issue() -> None:
    renderer = Renderer(language="de", labels=load_labels("de"))
    updated = datetime(2026, 12, 7, 6, 5, tzinfo=UTC)
    xml = renderer.archive_feed(
        ARCHIVE, name="KI-Briefing & Co", base_url="https://k.example", updated=updated
    )
    feed = ET.fromstring(xml.encode())
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}title") == "KI-Briefing & Co"
    assert feed.findtext(f"{ATOM}updated") == "2026-12-07T06:05:00Z"
    assert feed.find(f"{ATOM}author/{ATOM}name") is not None
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == len(ARCHIVE)
    first = entries[0]
    assert first.findtext(f"{ATOM}id") == "https://k.example/archive/2026-12-07.html"
    assert first.find(f"{ATOM}link").attrib["href"] == first.findtext(f"{ATOM}id")  # type: ignore[union-attr]
    assert entries[1].findtext(f"{ATOM}title") == "KI-Briefing: Chips & <Zölle>"
    assert entries[2].findtext(f"{ATOM}updated") == "2026-11-23T06:00:00Z"  # naive = UTC
    for entry in entries:
        for required in ("id", "title", "updated"):
            assert entry.findtext(f"{ATOM}{required}")


def test_language_mismatch_between_plan_and_renderer_is_reported() -> None:
    issue = Renderer(language="de", labels=load_labels("de")).issue(
        sample_plan("en"), unsubscribe_url=UNSUBSCRIBE_URL
    )
    assert any("plan language 'en'" in w for w in issue.warnings)
