"""The full sample issue in a real browser (Debian's chromium), at desktop and phone width.

Nothing may overflow sideways, every section heading and every "Read on" link must be on
screen, and full-page screenshots land in tests/artifacts/ for a human to look at. The
network is off: the photo of the day is answered with a generated picture.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from digest_samples import IMAGE_URL, ONLINE_URL, UNSUBSCRIBE_URL, all_read_on_links, sample_plan
from newsdesk.labels import load_labels
from newsdesk.render import Renderer

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); "
            ".ci/run installs it in CI. The test does not download a browser."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


def gradient_png(width: int, height: int) -> bytes:
    """A dawn-coloured gradient: stands in for the photo of the day without a network."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        t = y / height
        pixel = bytes((int(120 + 110 * t), int(140 + 60 * t), int(170 - 40 * t)))
        rows.extend(pixel * width)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def open_issue(browser: Browser, language: str, width: int, tmp_path: Path) -> Page:
    issue = Renderer(language=language, labels=load_labels(language)).issue(
        sample_plan(language), unsubscribe_url=UNSUBSCRIBE_URL, online_url=ONLINE_URL
    )
    path = tmp_path / f"issue.{language}.html"
    path.write_text(issue.html, encoding="utf-8")
    page = browser.new_page(viewport={"width": width, "height": 900})
    picture = gradient_png(600, 400)

    def answer(route: Route) -> None:
        if route.request.url == IMAGE_URL:
            route.fulfill(status=200, content_type="image/png", body=picture)
        elif route.request.url.startswith("file:"):
            route.continue_()
        else:  # an email must not load anything else
            route.abort()

    page.route("**/*", answer)
    page.goto(path.as_uri(), wait_until="load")
    return page


def assert_on_screen(page: Page, selector: str, what: str) -> None:
    locator = page.locator(selector)
    assert locator.count() >= 1, f"{what}: not in the page"
    element = locator.first
    assert element.is_visible(), f"{what}: hidden"
    box = element.bounding_box()
    assert box is not None, f"{what}: not laid out"
    inner_width = page.evaluate("window.innerWidth")
    assert box["width"] > 0 and box["height"] > 0, f"{what}: zero size {box}"
    assert box["x"] >= 0 and box["x"] + box["width"] <= inner_width, (
        f"{what}: {box} sticks out of the {inner_width} px viewport"
    )


@pytest.mark.parametrize("width", [600, 375])
@pytest.mark.parametrize("language", ["de", "en"])
def test_the_full_issue_fits_the_screen(
    browser: Browser, language: str, width: int, tmp_path: Path
) -> None:
    page = open_issue(browser, language, width, tmp_path)
    try:
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= page.evaluate("window.innerWidth"), "scrolls sideways"

        plan = sample_plan(language)
        for section in plan.sections:
            assert_on_screen(page, f'h2:text-is("{section.title}")', f"heading {section.title!r}")
        for link in all_read_on_links(plan):
            assert_on_screen(page, f'a[href="{link.url}"]', f"link {link.url}")
        assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)"), (
            "the photo did not load"
        )

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"issue.{language}.{width}.png"), full_page=True)
    finally:
        page.close()
