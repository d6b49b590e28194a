"""The tutorial: the lesson's steps, then practice puzzles whose feedback shows the right answer and the truth."""

import re

import pytest

from .conftest import screenshot, wait_for_puzzle

pytestmark = pytest.mark.browser


def test_the_tutorial_feedback_shows_the_right_answer_and_the_truth(new_context):
    from playwright.sync_api import expect

    page = new_context().new_page()
    page.goto("/")
    page.get_by_role("button", name="Play as guest").click()
    page.wait_for_url("**/tutorial")  # a new player is sent through the lesson first
    for heading in ("What is segmentation", "A merger", "A split", "What to look for", "Two sections side by side",
                    "Two look-alikes", "Select, inspect, decide"):
        expect(page.get_by_role("heading", level=2, name=heading)).to_be_visible()
        if heading == "A merger":  # one vocabulary: a merger is fixed by a cut, checked by a cut check
            expect(page.locator("[data-step=merger]")).to_contain_text("cut check")
        if heading == "A split":
            expect(page.locator("[data-step=split]")).to_contain_text("join check")
        if heading == "Two look-alikes":
            for picture in ("lesson-organelle.png", "lesson-sliver.png"):
                image = page.locator(f"img[src$='{picture}']")
                expect(image).to_be_visible()
                assert image.evaluate("i => i.complete && i.naturalWidth > 0")
            screenshot(page, "tutorial-lookalikes", docs=True)
        page.get_by_role("button", name="Next →").click()
    wait_for_puzzle(page)
    feedback = page.get_by_test_id("tutorial-feedback")
    expect(feedback).to_be_hidden()

    # The first practice puzzle is a true merge: "no" is wrong, and the feedback says so.
    page.keyboard.press("n")
    expect(feedback).to_be_visible()
    expect(feedback).to_contain_text("Not quite")
    expect(feedback.locator("[data-role=truth-answer]")).to_have_text("Yes, one neurite")
    expect(page.locator("[data-testid=puzzle-image] .layer-overlay img")).to_have_attribute(
        "src", re.compile(r"/truth\.png\?v=\d+-r\d+-[0-9a-f]+-truth$"))
    # the outcome and its button are brought into view (they opened under the fold, at every size)
    expect(feedback.get_by_role("button", name="Next puzzle")).to_be_in_viewport()
    screenshot(page, "tutorial", docs=True)

    # The second is a false merge: "no" is right.
    page.get_by_role("button", name="Next puzzle").click()
    expect(feedback).to_be_hidden()
    wait_for_puzzle(page)
    page.keyboard.press("n")
    expect(feedback).to_contain_text("Right!")
    expect(feedback.locator("[data-role=truth-answer]")).to_have_text("No, separate")

    # The third is a true split: the cut is right, so the answer is "No, two".
    page.get_by_role("button", name="Next puzzle").click()
    wait_for_puzzle(page)
    page.get_by_test_id("answer-no").click()
    expect(feedback.locator("[data-role=truth-answer]")).to_have_text("No, two")
    page.get_by_role("button", name="Finish the lesson").click()
    page.get_by_role("link", name="Start playing").click()
    page.wait_for_url("**/play")
    page.goto("/start")
    page.wait_for_url("**/play")  # the lesson is done: /start no longer sends the player back to it


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_side_by_side_step_reads_the_two_sections_and_its_toggle_switches_to_a_slice(new_context, size):
    from playwright.sync_api import expect

    viewport = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}[size]
    page = new_context(viewport=viewport).new_page()
    page.goto("/tutorial")
    heading = page.get_by_role("heading", level=2, name="Two sections side by side")
    for _ in range(4):
        page.get_by_role("button", name="Next →").click()
    expect(heading).to_be_visible()
    step = page.locator("[data-step=sections]")
    for words in ("This section: orange", "The next section: blue", "outline, size and texture"):
        expect(step).to_contain_text(words)  # what the two halves are and how to read their captions
    pair, slice_ = step.locator("img[src$='lesson-pair.png']"), step.locator("img[src$='lesson-pair-slice.png']")
    toggle = page.get_by_test_id("pair-demo-toggle")
    expect(pair).to_be_visible()
    expect(slice_).to_be_hidden()
    assert pair.evaluate("i => i.complete && i.naturalWidth") == 2 * 384 + 8  # a real pair picture
    assert pair.bounding_box()["width"] <= viewport["width"]
    expect(toggle).to_have_attribute("aria-pressed", "true")
    screenshot(page, f"tutorial-side-by-side-{size}")
    toggle.click()  # the slices: the slice where orange ends
    expect(slice_).to_be_visible()
    expect(pair).to_be_hidden()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    assert slice_.evaluate("i => i.complete && i.naturalWidth") == 384
    page.keyboard.press("p")  # and P, as in the game
    expect(pair).to_be_visible()
    expect(slice_).to_be_hidden()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(heading).to_be_visible()  # P switched the picture, not the step


def test_a_truth_picture_that_never_arrives_is_no_page_error_and_the_answer_still_shows(new_context):
    """The tutorial fetches each practice puzzle's truth while the player looks; when that fetch fails (a lost
    connection, or leaving the page while it loads) nothing may break: no unhandled error, the feedback shows."""
    from playwright.sync_api import expect

    context = new_context()
    errors = []
    context.route(re.compile(r".*/truth\.png.*"), lambda route: route.abort())
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/")
    page.get_by_role("button", name="Play as guest").click()
    page.wait_for_url("**/tutorial")
    while page.get_by_role("button", name="Next →").count() and page.get_by_role("button", name="Next →").is_visible():
        page.get_by_role("button", name="Next →").click()
    wait_for_puzzle(page)
    page.wait_for_timeout(500)  # the truth's fetch fails while the player looks
    page.keyboard.press("n")
    feedback = page.get_by_test_id("tutorial-feedback")
    expect(feedback).to_contain_text("Not quite")
    expect(feedback.locator("[data-role=truth-answer]")).to_have_text("Yes, one neurite")
    page.wait_for_timeout(300)
    assert errors == [], errors
