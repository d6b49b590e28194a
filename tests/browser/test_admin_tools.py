"""The admin's tools in Chromium: labels downloaded from the page, the quality chart of real edits, and
Neuroglancer opened from the edit log and from the tutorial, with every request kept on 127.0.0.1.

These tests change the segmentation (the crowd applies edits), so they run on a server of their own.
"""

import io
import json
import re
import zipfile

import numpy as np
import pytest

from .conftest import ADMIN, _require_chromium, build_instance, running_server, screenshot

pytestmark = pytest.mark.browser
EDITS = 3


def _apply_real_edits(home) -> None:
    """Crowds of four established players vote the right answer on merges until EDITS of them are applied."""
    from conftest import _settings, establish, vote

    from game.app import players
    from game.app import store as st
    from game.app.instance import Instance

    inst = Instance(home, _settings(home))
    try:
        for p in st.puzzles(inst.store, volume="demo", state="open", gold=False):
            if st.edit_count(inst.store, "demo") == EDITS:
                break
            if p["kind"] == "merge" and p["truth"]:
                crowd = [players.create_guest(inst.store) for _ in range(4)]
                establish(inst, crowd, 0.7)  # players with a record, whose votes count
                for guest in crowd:
                    vote(inst, guest["id"], p["id"], "yes", 1500)
        assert st.edit_count(inst.store, "demo") == EDITS
    finally:
        inst.store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    home = tmp_path_factory.mktemp("admin-tools-home")
    build_instance(home)
    _apply_real_edits(home)
    with running_server(home) as url:
        yield url, home


@pytest.fixture
def offline_context(browser, server):
    """A browser context in which any request to another host than the server fails the test.

    Every request goes through ``route``: those to the server continue, any other is aborted and
    recorded. JavaScript errors on any page are recorded too.
    """
    url, _ = server
    strays, errors, made = [], [], []

    def make():
        context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 800}, accept_downloads=True)
        context.set_default_timeout(20_000)

        def gate(route):
            if route.request.url.startswith(url + "/"):
                route.continue_()
            else:
                strays.append(route.request.url)
                route.abort()

        context.route("**/*", gate)
        context.on("page", lambda page: page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}")))
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()
    assert not strays, f"requests left 127.0.0.1: {strays}"
    assert not errors, f"JavaScript errors: {errors}"


def _log_in_as_admin(page):
    page.goto("/auth/login?next=/admin/volumes")
    page.get_by_label("Username").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/volumes")


def _current_labels(home):
    from conftest import _settings

    from game.app.instance import Instance

    inst = Instance(home, _settings(home))
    try:
        volume = inst.volumes.open("demo")
        return np.take(inst.agglomeration("demo").mapping, volume.read("supervoxels"))
    finally:
        inst.store.close()


def test_an_admin_downloads_the_labels_and_reads_the_quality_chart_of_real_edits(offline_context, server):
    from playwright.sync_api import expect

    _, home = server
    page = offline_context().new_page()
    _log_in_as_admin(page)
    row = page.locator("[data-volume=demo]")
    expect(row).to_contain_text(str(EDITS))  # the edits column
    row.get_by_role("link", name="demo").click()
    page.wait_for_url("**/admin/volumes/demo")

    quality = page.locator("[data-role=quality][data-ready=true]")
    expect(quality.locator("figure.chart-panel")).to_have_count(3)
    are = quality.locator("figure.chart-panel").first
    expect(are.locator("figcaption")).to_have_text("Adapted Rand error")
    path = are.locator("path.series").get_attribute("d")
    assert len(re.findall(r"[ML]", path)) == EDITS + 1  # the automatic segmentation, then each edit
    expect(are.locator("line.ref-limit")).to_have_count(1)
    expect(are.locator("line.ref-automatic")).to_have_count(1)
    expect(page.locator("[data-role=activity] svg")).not_to_have_count(0)
    screenshot(page, "admin-volume")

    with page.expect_download() as caught:
        page.get_by_test_id("label-downloads").get_by_role("link", name=".npy").click()
    download = caught.value
    assert download.suggested_filename == f"demo-labels-{EDITS}edits.npy.zip"
    with zipfile.ZipFile(download.path()) as archive:
        labels = np.load(io.BytesIO(archive.read(f"demo-labels-{EDITS}edits.npy")))
        meta = json.loads(archive.read(f"demo-labels-{EDITS}edits.npy.json"))
    np.testing.assert_array_equal(labels, _current_labels(home))
    from game.app.exports import label_checksum
    assert meta["edits"] == EDITS and meta["checksum"] == label_checksum(labels)


def _chunks_fetched(context) -> list[str]:
    """The data chunks the context's pages and their workers fetch with success (filled as they come)."""
    fetched = []
    context.on("response", lambda r: fetched.append(r.url) if r.ok and "/full/" in r.url else None)
    return fetched


def _layers_loaded(viewer, fetched: list[str], names: list[str]) -> None:
    """Neuroglancer shows these layers and has fetched image and segmentation chunks from the server."""
    from playwright.sync_api import expect

    for name in names:
        expect(viewer.locator(".neuroglancer-layer-item-label", has_text=name)).to_have_count(1)
    for _ in range(300):
        if any("/image/full/" in u for u in fetched) and any(re.search(r"/segmentation-\d+/full/", u)
                                                               for u in fetched):
            return
        viewer.wait_for_timeout(100)
    raise AssertionError(f"Neuroglancer did not fetch image and segmentation chunks; it fetched {fetched}")


def test_neuroglancer_opens_an_edit_and_a_practice_puzzle_offline(offline_context):
    from playwright.sync_api import expect

    context = offline_context()
    fetched = _chunks_fetched(context)
    page = context.new_page()
    _log_in_as_admin(page)
    page.goto("/admin/volumes/demo/edits")
    first = page.locator("[data-seq='0']")
    with context.expect_page() as opened:
        first.get_by_role("link", name="Neuroglancer").click()
    viewer = opened.value
    _layers_loaded(viewer, fetched, ["EM", "truth", "before #0", "after #0"])
    screenshot(viewer, "neuroglancer-edit")

    # A student in the tutorial: answer the first practice puzzle, then see it in 3D.
    student = offline_context()
    fetched = _chunks_fetched(student)
    lesson = student.new_page()
    lesson.goto("/")
    lesson.get_by_role("button", name="Play as guest").click()
    lesson.wait_for_url("**/tutorial")
    while not lesson.locator("[data-step=practice]").is_visible():  # the lesson's steps, up to the practice
        lesson.get_by_role("button", name="Next →").click()
    lesson.wait_for_selector("[data-testid=puzzle-image][data-state=ready]")
    lesson.keyboard.press("y")
    see = lesson.get_by_role("link", name="See it in 3D")
    expect(see).to_be_visible()
    with student.expect_page() as opened:
        see.click()
    viewer = opened.value
    _layers_loaded(viewer, fetched, ["EM", "segmentation"])
    expect(viewer.locator(".neuroglancer-layer-item-label", has_text="truth")).to_have_count(0)
