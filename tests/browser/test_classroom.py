"""A class in Chromium: an admin makes a teacher, the teacher opens the projector board, two students join
from phones (separate browser contexts) by the board's QR code, answer, and the board ranks them live."""

import io
import time

import pytest

from .conftest import ADMIN, answer_and_move_on, answer_key, record_figure, screenshot, wait_for_puzzle

pytestmark = pytest.mark.browser

TEACHER = ("tessa", "teacher password")
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
PROJECTOR = {"width": 1920, "height": 1080}


def _post(context, url, body):
    token = context.request.get("/auth/csrf").json()["csrf_token"]
    reply = context.request.post(url, data=body, headers={"X-CSRFToken": token, "Accept": "application/json"})
    assert reply.ok, reply.text()
    return reply.json()


def _teacher(new_context):
    """A registered player made a teacher from the admin page, logged in on a projector-sized screen."""
    from playwright.sync_api import expect

    teacher = new_context(viewport=PROJECTOR)
    _post(teacher, "/auth/register", {"username": TEACHER[0], "password": TEACHER[1]})
    admin = new_context().new_page()
    admin.goto("/auth/login?next=/admin/")
    admin.get_by_label("Username").fill(ADMIN[0])
    admin.get_by_label("Password").fill(ADMIN[1])
    admin.get_by_role("button", name="Log in").click()
    admin.wait_for_url("**/admin/")
    admin.locator("#role-username").fill(TEACHER[0])
    admin.locator("#role-role").select_option("teacher")
    admin.get_by_role("button", name="Give the role").click()
    expect(admin.locator(".flash")).to_contain_text(f"{TEACHER[0]} is now a teacher")
    return teacher


def _decode_qr(locator) -> str:
    import zxingcpp
    from PIL import Image

    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(locator.screenshot())))
    assert len(found) == 1, "the QR code on the board did not decode"
    return found[0].text


def _join(new_context, link: str, nickname: str):
    page = new_context(**PHONE).new_page()
    page.goto(link)
    page.get_by_test_id("nickname-input").fill(nickname)
    return page


def _answer(live_server, page) -> int:
    before = page.get_by_test_id("score").text_content()
    answer_and_move_on(page, answer_key(live_server, page))  # moving on past an outcome shown, if any
    page.wait_for_function("s => document.querySelector('[data-testid=score]').textContent !== s", arg=before)
    return int(page.get_by_test_id("score").text_content())


def test_a_teacher_runs_a_round_that_two_phones_join_by_the_qr_code(new_context, live_server):
    from playwright.sync_api import expect

    board = _teacher(new_context).new_page()
    board.goto("/classes")
    board.get_by_label("Name").fill("Year 9 biology")
    board.get_by_role("button", name="Make the class").click()
    code = board.get_by_test_id("join-code").text_content().strip()
    board.get_by_test_id("open-board").click()
    board.wait_for_url("**/board")
    expect(board.get_by_test_id("board-code")).to_have_text(f"{code[:3]} {code[3:]}")
    qr = board.get_by_test_id("qr")
    expect(qr).to_be_visible()
    board.wait_for_function("() => document.querySelector('[data-testid=qr]').complete")
    link = _decode_qr(qr)
    assert link == f"{live_server.url}/join/{code}"
    screenshot(board, "board-waiting", docs=True)

    ana = _join(new_context, link, "Ana")
    expect(ana.get_by_test_id("join-code-input")).to_have_value(code)
    screenshot(ana, "join-phone", docs=True)
    ana.get_by_test_id("join-button").click()
    ana.wait_for_url("**/class")
    expect(ana.get_by_test_id("my-nickname")).to_have_text("Ana")
    screenshot(ana, "student-waiting-phone")
    ben = _join(new_context, link, "Ben")
    ben.get_by_test_id("join-button").click()
    ben.wait_for_url("**/class")
    expect(board.get_by_test_id("joined")).to_have_text("2", timeout=2000)

    board.get_by_label("Round").select_option("3")
    board.get_by_test_id("start-round").click()
    expect(board.get_by_test_id("countdown")).to_be_visible()
    for student in (ana, ben):  # waiting students are taken to the puzzles when the round starts
        student.wait_for_url("**/play")
        wait_for_puzzle(student)
    screenshot(ana, "student-play-phone")

    latencies, scores = [], {}
    for student, nickname in ((ana, "Ana"), (ben, "Ben"), (ana, "Ana")):
        points = scores[nickname] = _answer(live_server, student)  # the vote is committed once the score moves
        t0 = time.monotonic()
        row = board.locator("[data-testid=ranking] tbody tr", has_text=nickname)
        expect(row.locator(".bs-points")).to_have_text(str(points), timeout=2000)
        latencies.append(round(time.monotonic() - t0, 3))
    record_figure("class_board_update_s", latencies)
    ranked = board.locator("[data-testid=ranking] tbody tr .bs-name").all_text_contents()
    assert sorted(ranked) == ["Ana", "Ben"]
    board.wait_for_timeout(1500)  # let the changed rows' highlight fade before the picture
    screenshot(board, "board-live", docs=True)
    board.set_viewport_size({"width": 1366, "height": 768})
    screenshot(board, "board-live-1366")
    board.set_viewport_size(PROJECTOR)

    board.get_by_test_id("end-round").click()
    podium = board.get_by_test_id("podium")
    expect(podium.locator(".podium-place")).to_have_count(2)
    # all answers right: the most points (a teach puzzle's shown answer pays a bonus) take the first place
    expect(podium.locator(".podium-1 .podium-name")).to_have_text(max(scores, key=scores.get))
    screenshot(board, "board-podium", docs=True)
    # the podium, the achievements and the next round's controls on one projector screen, none wider than it
    for part in (podium, board.get_by_test_id("achievements"), board.get_by_test_id("start-round")):
        expect(part).to_be_in_viewport(ratio=1)
    assert board.evaluate("() => document.scrollingElement.scrollWidth <= window.innerWidth")
    board.set_viewport_size({"width": 1366, "height": 768})
    screenshot(board, "board-podium-1366")
    board.set_viewport_size({"width": 390, "height": 844})  # a student's phone, from the link on /play
    expect(podium).to_be_in_viewport()  # (it sat under 1,100 px of empty projector screen)
    screenshot(board, "board-podium-phone")
    board.set_viewport_size(PROJECTOR)

    # the student's page hears the early end from the board: the clock stops, the stage says so, no answer is
    # taken (before: the clock went on counting and each answer failed into the next puzzle)
    expect(ana.get_by_test_id("round-clock")).to_have_text("the round is over", timeout=3000)
    if ana.get_by_test_id("feedback").is_visible():  # an outcome stays until the student moves on
        ana.keyboard.press("Enter")
    expect(ana.locator(".stage-message")).to_contain_text("The round is over.", timeout=3000)
    expect(ana.get_by_role("link", name="See your place")).to_have_attribute("href", "/class")
    assert all(b.is_disabled() for b in ana.locator("button[data-answer]").all())
    ana.keyboard.press("y")
    expect(ana.locator(".notice-error")).to_have_count(0)
    screenshot(ana, "student-round-over-phone")

    report = board.context.new_page()
    report.goto(board.url.replace("/board", ""))
    report.get_by_role("link", name="Round").first.click()
    expect(report.get_by_test_id("report-students")).to_contain_text("Ana")
    expect(report.get_by_role("heading", name="Learning curve")).to_be_visible()
    screenshot(report, "round-report")

    board.get_by_label("Round").select_option("3")  # the next round opens on the student's page by itself
    board.get_by_test_id("start-round").click()
    expect(ana.get_by_test_id("round-clock")).to_contain_text("left in the round", timeout=3000)
    wait_for_puzzle(ana)
    _answer(live_server, ana)
