"""Two players at once: each sees the other on the live leaderboard (Socket.IO) within two seconds."""

import pytest

from .conftest import answer_and_move_on, answer_key, play_as_guest, screenshot

pytestmark = pytest.mark.browser


def _answer_and_wait_for_the_score(live_server, page) -> None:
    before = page.get_by_test_id("score").text_content()
    answer_and_move_on(page, answer_key(live_server, page))
    page.wait_for_function("s => document.querySelector('[data-testid=score]').textContent !== s", arg=before)


def test_two_players_see_each_other_on_the_live_leaderboard_within_two_seconds(new_context, live_server):
    from playwright.sync_api import expect

    ann, bob = play_as_guest(new_context()), play_as_guest(new_context())
    names = {page: page.locator("body").get_attribute("data-player-name") for page in (ann, bob)}
    for player, watcher in ((ann, bob), (bob, ann)):
        _answer_and_wait_for_the_score(live_server, player)  # the vote is committed once the score moves
        expect(watcher.get_by_test_id("leaderboard")).to_contain_text(names[player], timeout=2000)
    expect(ann.locator("[data-testid=leaderboard] .is-me")).to_contain_text(names[ann])

    board_page = ann.context.new_page()
    board_page.goto("/leaderboard")
    _answer_and_wait_for_the_score(live_server, bob)
    row = board_page.locator(f"[data-testid=leaderboard] li:has-text('{names[bob]}') .board-points")
    expect(row).to_have_text(bob.get_by_test_id("score").text_content(), timeout=2000)
    board_page.wait_for_timeout(1500)  # let the changed row's highlight fade before the picture
    screenshot(board_page, "leaderboard", docs=True)
