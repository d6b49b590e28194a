"""The play page at a desktop, a touch tablet (both ways up) and a phone (both ways up); the outcome of a teach
puzzle; friendly edges."""

import re

import pytest

from .conftest import answer_and_move_on, answer_key, play_as_guest, screenshot, shown_puzzle

pytestmark = pytest.mark.browser

SIZES = {
    "desktop": {"viewport": {"width": 1366, "height": 768}},
    "tablet": {"viewport": {"width": 1024, "height": 768}, "has_touch": True},
    "phone": {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True},
    "tablet-portrait": {"viewport": {"width": 820, "height": 1180}, "has_touch": True},
    "phone-landscape": {"viewport": {"width": 844, "height": 390}, "has_touch": True, "is_mobile": True},
}


def _box(page, selector: str) -> dict:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not rendered"
    return box


def _overlap(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def _on_screen(box: dict, viewport: dict) -> bool:
    return (box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 0.5
            and box["y"] + box["height"] <= viewport["height"] + 0.5)


@pytest.mark.parametrize("size", SIZES)
def test_image_slider_and_answers_are_on_screen_without_covering_each_other(new_context, size):
    options = SIZES[size]
    page = play_as_guest(new_context(**options))
    viewport = options["viewport"]
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], "the page scrolls sideways"
    parts = {"image": _box(page, "[data-testid=puzzle-image]"), "slider": _box(page, "[data-role=slice]"),
             **{name: _box(page, f"[data-testid=answer-{name}]") for name in ("yes", "no", "unsure")}}
    for name, box in parts.items():
        assert _on_screen(box, viewport), f"{name} is off screen at {size}: {box}"
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not _overlap(parts[a], parts[b]), f"{a} and {b} overlap at {size}"
    header = _box(page, ".site-header")
    assert header["y"] + header["height"] <= parts["image"]["y"], "the header covers the image"
    if size == "tablet":
        assert _on_screen(_box(page, ".scorecard"), viewport), "the score card is below the fold on a tablet"
    screenshot(page, f"play-{size}")
    page.evaluate("window.scrollTo(0, 300)")  # a scrolled page keeps the header off the image too
    header, image = _box(page, ".site-header"), _box(page, "[data-testid=puzzle-image]")
    assert not _overlap(header, image)


def _until_a_teach_puzzle(live_server, page, limit: int = 40) -> int:
    for _ in range(limit):
        if shown_puzzle(page) in live_server.teach:
            return shown_puzzle(page)
        answer_and_move_on(page, "u")
    pytest.fail(f"no teach puzzle came in {limit} puzzles")


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_teach_puzzle_shows_its_outcome_and_the_truth_on_the_answered_puzzle(new_context, live_server, size):
    from playwright.sync_api import expect

    page = play_as_guest(new_context(**SIZES[size]))
    puzzle = _until_a_teach_puzzle(live_server, page)
    page.keyboard.press(answer_key(live_server, page, right=False))
    feedback = page.get_by_test_id("feedback")
    expect(feedback).to_be_visible()
    expect(feedback).to_contain_text("Not quite")
    expect(feedback.locator("[data-role=explanation]")).not_to_be_empty()  # what to look for
    verdict = page.get_by_test_id("verdict")
    expect(verdict).to_be_visible()
    labels = {"yes": "Yes, one neurite", "no": "No, separate|No, two"}
    expect(verdict).to_contain_text(re.compile(labels[live_server.answers[puzzle]]))
    # still the answered puzzle, now with the truth drawn on it
    assert shown_puzzle(page) == puzzle
    expect(page.locator("[data-testid=puzzle-image] .layer-overlay img")).to_have_attribute(
        "src", re.compile(rf"/puzzle-image/{puzzle}/\d/truth\.png\?v={puzzle}-r\d+-[0-9a-f]+-truth$"))
    viewport = SIZES[size]["viewport"]
    next_button = page.get_by_role("button", name="Next puzzle")
    assert _on_screen(next_button.bounding_box(), viewport) and _on_screen(verdict.bounding_box(), viewport)
    screenshot(page, f"teach-outcome-{size}")
    page.keyboard.press("y")  # answering again is not possible: the outcome stays until the player moves on
    assert shown_puzzle(page) == puzzle and feedback.is_visible()
    next_button.click()
    page.wait_for_function("id => document.querySelector('[data-testid=puzzle-image]').dataset.puzzleId"
                           " !== String(id)", arg=puzzle)
    expect(feedback).to_be_hidden()
    expect(verdict).to_be_hidden()


def test_other_puzzles_show_only_that_the_answer_counted(new_context, live_server):
    from playwright.sync_api import expect

    page = play_as_guest(new_context())
    while shown_puzzle(page) in live_server.teach:
        answer_and_move_on(page, "u")
    puzzle = shown_puzzle(page)
    page.keyboard.press(answer_key(live_server, page, right=False))
    expect(page.get_by_test_id("answer-status")).to_contain_text("Answer counted")
    page.wait_for_function("id => document.querySelector('[data-testid=puzzle-image]').dataset.puzzleId"
                           " !== String(id)", arg=puzzle)
    assert not page.get_by_test_id("feedback").is_visible()


def test_a_first_visit_to_play_goes_to_the_home_page_and_on_to_the_tutorial(new_context):
    from playwright.sync_api import expect

    page = new_context().new_page()
    page.goto("/play")
    page.wait_for_url(re.compile(r"/\?next=/play$"))
    expect(page.get_by_role("heading", name="Welcome back")).to_have_count(0)
    expect(page.get_by_text("Play as a guest or log in first.")).to_be_visible()
    page.get_by_role("button", name="Play as guest").click()
    page.wait_for_url("**/tutorial")


def test_error_pages_are_in_the_sites_layout_with_a_way_back(new_context):
    from playwright.sync_api import expect

    page = play_as_guest(new_context(**SIZES["phone"]))
    for path, title in (("/no/such/page", "Nothing here"), ("/admin/", "This page is not for you")):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        expect(page.locator(".site-header")).to_be_visible()
    screenshot(page, "error-403-phone")
    page.get_by_role("link", name="Home page").click()
    page.wait_for_url(re.compile(r"/$"))


def test_a_stale_play_as_guest_form_shows_a_page_and_works_on_the_second_click(new_context):
    from playwright.sync_api import expect

    context = new_context()
    stale = context.new_page()
    stale.goto("/")
    other = context.new_page()
    other.goto("/")
    other.get_by_role("button", name="Play as guest").click()  # a new session: the first tab's form is stale
    other.wait_for_url("**/tutorial")
    stale.get_by_role("button", name="Play as guest").click()
    expect(stale.get_by_role("heading", level=1)).to_have_text("Please try that again")
    assert "ok" not in stale.locator("body").inner_text()[:20]
    stale.get_by_role("button", name="Play as guest").click()
    stale.wait_for_url("**/tutorial")
