"""The player's record page: the points chart is drawn in the browser from the page's JSON."""

import pytest

from .conftest import answer_and_move_on, answer_key, play_as_guest

pytestmark = pytest.mark.browser


def test_a_player_who_answered_sees_the_points_chart(new_context, live_server):
    page = play_as_guest(new_context())
    for _ in range(2):
        answer_and_move_on(page, answer_key(live_server, page))
    page.goto("/me")
    chart = page.locator("svg[data-chart]")
    chart.wait_for()
    # me.js draws the line and its axis labels into the empty SVG (svg.js's el)
    assert chart.locator("path, polyline").count() >= 1
    assert chart.locator("text").count() >= 2
