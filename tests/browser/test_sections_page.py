"""A puzzle whose parts touch only across sections opens on its pair picture, at a desktop, a tablet, a phone
and a phone on its side; on the pair picture and on the slices the answers are on the first screen."""

import re

import pytest

from .conftest import running_server, screenshot, wait_for_puzzle

pytestmark = pytest.mark.browser

SIZES = {
    "desktop": {"viewport": {"width": 1366, "height": 768}},
    "tablet": {"viewport": {"width": 820, "height": 1180}, "has_touch": True},
    "phone": {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True},
    "phone-landscape": {"viewport": {"width": 844, "height": 390}, "has_touch": True, "is_mobile": True},
}


def answers_on_screen(page, viewport: dict, view: str) -> None:
    """Each answer button lies wholly inside the viewport, unscrolled: no scrolling to answer."""
    assert page.evaluate("window.scrollY") == 0
    for answer in ("yes", "no", "unsure"):
        box = page.get_by_test_id(f"answer-{answer}").bounding_box()
        assert box is not None and box["x"] >= 0 and box["y"] >= 0, f"{answer} is not shown on the {view} view"
        assert box["x"] + box["width"] <= viewport["width"] + 0.5 and box["y"] + box["height"] <= viewport["height"] + 0.5, \
            f"the {answer} answer is off screen on the {view} view: {box} in {viewport}"


@pytest.fixture(scope="module")
def sections_server(tmp_path_factory):
    """A game whose only crowd puzzle joins two segments across sections."""
    from conftest import TINY_SHAPE, _settings, across_puzzle

    from game.app import pipeline
    from game.app.instance import Instance

    home = tmp_path_factory.mktemp("sections-home")
    inst = Instance(home, _settings(home))
    try:
        pipeline.make_demo(inst, "demo", shape=TINY_SHAPE, seed=3)
        puzzle = across_puzzle(inst)
    finally:
        inst.store.close()
    with running_server(home) as url:
        yield url, puzzle


@pytest.mark.parametrize("size", SIZES)
def test_a_puzzle_across_sections_opens_side_by_side_and_the_slider_goes_back_to_the_slices(browser,
                                                                                          sections_server, size):
    url, puzzle = sections_server
    context = browser.new_context(base_url=url, **SIZES[size])
    context.set_default_timeout(10_000)
    errors = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        token = context.request.get("/auth/csrf").json()["csrf_token"]
        assert context.request.post("/auth/guest", headers={"X-CSRFToken": token, "Accept": "application/json"}).ok
        page.goto("/play")
        wait_for_puzzle(page)
        stage = page.get_by_test_id("puzzle-image")
        assert stage.get_attribute("data-puzzle-id") == str(puzzle)
        assert stage.get_attribute("data-view") == "pair"
        pair = page.locator(".layer-plain img")
        assert pair.evaluate("i => i.complete && i.naturalWidth") == 2 * 384 + 8
        assert "/0/pair.png" in pair.get_attribute("src")
        box, viewport = stage.bounding_box(), SIZES[size]["viewport"]
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 0.5
        # as large as fits: never shrunk to a stamp to make room for the answers
        assert box["width"] >= 0.6 * min(viewport["width"], viewport["height"]), f"the picture is small: {box}"
        screenshot(page, f"sections-pair-{size}")
        answers_on_screen(page, viewport, "pair")
        toggle = page.get_by_test_id("pair-toggle")
        assert toggle.is_visible() and toggle.get_attribute("aria-pressed") == "true"
        # the counter names the two sections on screen (it said the stack's slice, "4 / 7")
        assert re.fullmatch(r"\d+ & \d+ / \d+", page.get_by_test_id("slice-index").text_content()), \
            page.get_by_test_id("slice-index").text_content()
        page.keyboard.press("ArrowUp")  # a step goes back to the slices, on the slice it left
        assert stage.get_attribute("data-view") == "slices" and toggle.get_attribute("aria-pressed") == "false"
        assert "/overlay.png" in page.locator(".layer-overlay img").get_attribute("src")
        assert stage.bounding_box() == box  # the slices take the picture's place: nothing moves
        answers_on_screen(page, viewport, "slices")
        screenshot(page, f"sections-slices-{size}")
        toggle.click()
        assert stage.get_attribute("data-view") == "pair"
        page.keyboard.press("p")
        assert stage.get_attribute("data-view") == "slices"
    finally:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"
