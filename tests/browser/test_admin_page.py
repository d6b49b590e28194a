"""The admin page: the quality table, and an expert decision taken from the queue."""

import pytest

from .conftest import ADMIN

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
