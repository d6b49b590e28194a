"""Property: no call, however malformed, oversized, wrong-typed or forged, gets a 5xx, goes unacknowledged
or changes the database when it is refused.

The cases come from ``tests/webfuzz.py`` and drive every route and every
Socket.IO event as every role. ``PROOFQUEST_FUZZ_EXAMPLES`` sets how many
cases each test draws (default 150, a few seconds); ``bench/bench_fuzz.py``
runs thousands and counts the failures by kind.
"""

import os

import pytest
import webfuzz
from conftest import oracle_puzzles
from hypothesis import HealthCheck, given, settings

from game.app import store as st
from game.web import create_app, socketio

EXAMPLES = int(os.environ.get("PROOFQUEST_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def identities(tmp_path_factory, tiny_demo_home):
    """One app over a copy of the tiny demo for the whole module (cases share it, as players share a server)."""
    import shutil

    from conftest import _settings

    from game.app.instance import Instance
    home = tmp_path_factory.mktemp("fuzz") / "instance"
    shutil.copytree(tiny_demo_home, home)
    inst = Instance(home, _settings(home))
    oracle_puzzles(inst)
    st.set_job(inst.store, "prepare", "done", 3, 3, "ready")
    app = create_app({"TESTING": True, "LEADERBOARD_INTERVAL": 3600}, instance=inst)
    yield webfuzz.Identities(app, socketio)
    inst.store.close()


@FUZZ
@given(data=webfuzz.hs.data())
def test_no_route_answers_5xx_or_changes_the_database_when_it_refuses(identities, data):
    case = data.draw(webfuzz.rest_cases(webfuzz.routes(identities.app)))
    assert webfuzz.run_rest_case(identities, case) == []


@FUZZ
@given(data=webfuzz.hs.data())
def test_every_event_is_acknowledged_and_a_refused_one_changes_nothing(identities, data):
    case = data.draw(webfuzz.socket_cases(webfuzz.events(socketio)))
    assert webfuzz.run_socket_case(identities, case) == []
