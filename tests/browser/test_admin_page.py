"""The admin page: the quality table, and an expert decision taken from the queue."""

import pytest

from .conftest import ADMIN, screenshot

pytestmark = pytest.mark.browser


def test_an_admin_sees_the_quality_and_settles_a_queued_puzzle(new_context):
    from playwright.sync_api import expect

    page = new_context().new_page()
    page.goto("/admin/")
    assert "/auth/login" in page.url  # admins only: anyone else is asked to log in
    page.get_by_label("Username").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    expect(page.get_by_role("row", name="Adapted Rand error")).to_be_visible()
    expect(page.get_by_role("link", name="demo")).to_have_attribute("href", "/admin/volumes/demo")  # its charts
    queued = page.locator("[data-puzzle]")
    expect(queued).to_have_count(1)
    queued.get_by_role("button", name="Reject").click()
    expect(queued).to_have_count(0)
    expect(page.locator("[data-expert-queue] .notice")).to_contain_text("settled")


def test_the_admin_pages_keep_a_phones_width(new_context):
    page = new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto("/auth/login?next=/admin/")
    page.get_by_label("Username").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    for path in ("/admin/", "/admin/volumes", "/admin/volumes/demo", "/admin/volumes/demo/edits", "/admin/players",
                 "/admin/puzzles"):
        page.goto(path)
        # the wide tables scroll inside themselves (before: /admin/ was 448 px wide, the edit log's buttons at
        # x = 741 to 880)
        width = page.evaluate("() => document.scrollingElement.scrollWidth")
        assert width <= 390, (path, width)
        screenshot(page, "admin-phone" + path.replace("/", "-").rstrip("-"))
