"""Shared fixtures: instance folders in tmp_path, a tiny demo volume, the app and its clients."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TINY_SHAPE = (16, 96, 96)


def shared_data(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test when the folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real EM data not found at {path}")
    return path


@pytest.fixture(scope="session")
def tiny_demo_home(tmp_path_factory) -> Path:
    """An instance folder holding a small generated demo volume (made once per session)."""
    from game.app import pipeline
    from game.app.instance import Instance

    home = tmp_path_factory.mktemp("demo-home")
    inst = Instance(home, _settings(home))
    pipeline.make_demo(inst, "demo", shape=TINY_SHAPE, seed=3)
    inst.store.close()
    return home


# The tiny demo has a few dozen segments, so every edit would count as big (BIG_EDIT_STAKE is set for
# volumes of hundreds of segments and more): the tests run without that rule, except those about it.
# It has a handful of gold puzzles too, so a player is established after two of them (and stays so while its
# whole gold record passes: with 4, one miss is never made up; tests/test_simulate.py's crowd gets 12). Rate
# limits are off too, except in the tests about them (tests/test_web_trust.py) and on live servers; so is
# drawing the crowd's puzzles ahead of time (tests/test_pictures.py turns it on).
TINY_SETTINGS = {"DEMO_SHAPE": TINY_SHAPE, "DEMO_SEED": 3, "BIG_EDIT_STAKE": 1.0, "ESTABLISHED_GOLD_ANSWERS": 2,
                 "ESTABLISHED_ALPHA": 0.4, "RATE_LIMITS_ENABLED": False, "PRERENDER": False}


def _settings(home: Path, **extra) -> dict:
    from game.app.settings import load_settings
    return load_settings({"HOME": str(home), **TINY_SETTINGS, **extra}, environ={})


def _copy(source: Path, tmp_path: Path) -> Path:
    """A fresh copy of an instance folder for one test."""
    target = tmp_path / "instance"
    shutil.copytree(source, target)
    return target


def _opened(home: Path):
    """An instance over ``home`` with the test settings, closed when the test ends (a fixture's body)."""
    from game.app.instance import Instance
    instance = Instance(home, _settings(home))
    yield instance
    instance.store.close()


@pytest.fixture(scope="session")
def prepared_demo_home(tmp_path_factory, tiny_demo_home) -> Path:
    """The tiny demo's instance folder after its first start's preparation (known answers applied, the crowd's
    puzzles made), with the default test settings; made once per session, as many tests start from it."""
    home = _copy(tiny_demo_home, tmp_path_factory.mktemp("prepared-home"))
    for inst in _opened(home):
        inst.pool.prepare_volume("demo")
    return home


@pytest.fixture
def prepared_inst(tmp_path, prepared_demo_home):
    """An instance over a fresh copy of :func:`prepared_demo_home`: as the same folder opened again by a new
    process after its preparation."""
    yield from _opened(_copy(prepared_demo_home, tmp_path))


@pytest.fixture
def home(tmp_path, tiny_demo_home) -> Path:
    """A fresh copy of the tiny demo instance folder for one test."""
    return _copy(tiny_demo_home, tmp_path)


@pytest.fixture
def inst(home):
    yield from _opened(home)


def oracle_puzzles(inst, volume: str = "demo", *, n_merge: int = 12, n_split: int = 6, gold_every: int = 4,
                   teach: bool = False, more_gold: int = 0):
    """Hand-made puzzles (tests need no detector): correct and wrong merges, correct splits.

    Every ``gold_every``-th is a secret gold puzzle (with ``teach``, a teach puzzle instead). ``more_gold``
    adds that many more secret gold merges after them, half correct and half wrong, between pairs of
    segments that none of the others joins.

    Their truth is the product's own definition (:meth:`game.puzzles.edit.PuzzleEdit.is_correct`).
    """
    import numpy as np

    from game.app import store as st
    from game.evaluation import metrics, quality
    from game.puzzles.edit import PuzzleEdit
    from game.segmentation.rag import RAG

    vol = inst.volumes.open(volume)
    agg = inst.agglomeration(volume)
    table = quality.truth_table(vol)
    truth = metrics.supervoxel_truth(table=table)
    sizes = np.zeros(agg.n_supervoxels + 1)
    sizes[table.seg_labels] = table.seg_sizes
    rag = RAG.from_arrays(vol.load_side("rag"))
    mapping = agg.mapping
    between = np.flatnonzero(mapping[rag.u] != mapping[rag.v])
    order = between[np.argsort(-rag.area[between])]
    merges, seen = {True: [], False: []}, set()
    for e in order:
        a, b = int(rag.u[e]), int(rag.v[e])
        pair = tuple(sorted((int(mapping[a]), int(mapping[b]))))
        correct = PuzzleEdit("merge", (a, b)).is_correct(agg, truth, sizes)
        if pair in seen or correct is None or len(merges[correct]) == n_merge // 2 + more_gold // 2:
            continue
        seen.add(pair)
        merges[correct].append({"kind": "merge", "anchors": [a, b], "supervoxels": [], "segments": list(pair),
                                "location": _location(vol, a), "score": 0.6, "truth": correct})
    extra = [p for pair in zip(merges[True][n_merge // 2:], merges[False][n_merge // 2:]) for p in pair]
    puzzles = [p for pair in zip(merges[True][:n_merge // 2], merges[False][:n_merge // 2]) for p in pair]
    n_merge = len(puzzles)
    for segment in agg.segments():
        members = agg.members(segment)
        labels = truth[members]
        if len(np.unique(labels[labels > 0])) < 2:
            continue
        minority = np.unique(labels[labels > 0])[-1]
        moved = members[labels == minority]
        rest = members[labels != minority]
        if len(rest) == 0:
            continue
        edit = PuzzleEdit("split", (int(rest[0]), int(moved[0])), tuple(int(s) for s in moved))
        if not edit.is_correct(agg, truth, sizes):
            continue
        puzzles.append({"kind": "split", "anchors": list(edit.anchors), "supervoxels": list(edit.moved),
                        "segments": [int(segment)], "location": _location(vol, int(moved[0])), "score": 0.7,
                        "truth": True})
        if len(puzzles) == n_merge + n_split:
            break
    for i, p in enumerate(puzzles):
        p["gold"] = i % gold_every == gold_every - 1
        p["teach"] = p["gold"] and teach
    puzzles += [{**p, "gold": True, "teach": False} for p in extra]
    return st.add_puzzles(inst.store, volume, puzzles), puzzles


def vote(inst, player_id: int, puzzle_id: int, answer: str, ms=None) -> dict:
    """Cast a vote as a player who was handed the puzzle (with its ticket)."""
    from game.crowd import assignment, votes
    ticket = assignment.issue_ticket(inst.ticket_key, player_id, puzzle_id) if isinstance(puzzle_id, int) else None
    return votes.cast_vote(inst, player_id, puzzle_id, answer, ms, ticket)


def establish(inst, players, reliability: float = 0.8) -> None:
    """Give players the standing an established record earns (their votes count in consensus)."""
    from game.app import store as st
    st.set_reliabilities(inst.store, {p["id"] if isinstance(p, dict) else p: (reliability, True) for p in players})


def _location(volume, supervoxel: int) -> list[int]:
    import numpy as np
    where = np.argwhere(volume.read("supervoxels") == supervoxel)
    return [int(c) for c in where[len(where) // 2]]


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(home: Path, **env):
    """``python run.py`` on a free port over ``home`` until the block ends; yields its URL.

    Its output goes to ``home/server.log``, quoted when it fails to become ready.
    """
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    root = Path(__file__).resolve().parents[1]
    environ = {**os.environ, "PROOFQUEST_DEMO_SHAPE": "16,96,96", "PROOFQUEST_BIG_EDIT_STAKE": "1.0",
               "PROOFQUEST_ESTABLISHED_GOLD_ANSWERS": "2", "PROOFQUEST_ESTABLISHED_ALPHA": "0.4",
               "PROOFQUEST_HOME": str(home),
               **{f"PROOFQUEST_{k}": str(v) for k, v in env.items()}}
    with open(home / "server.log", "w") as log:
        server = subprocess.Popen([sys.executable, str(root / "run.py"), "--home", str(home), "--port", str(port)],
                                  cwd=root, env=environ, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180  # a first start on a loaded shared machine: a minute was short
            while True:
                try:
                    with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not become ready:\n" + (home / "server.log").read_text())
                time.sleep(0.1)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


@pytest.fixture
def live_server(home, inst):
    """The real server (``python run.py``) on a free port over a tiny instance with oracle puzzles."""
    oracle_puzzles(inst)
    with running_server(home, LEADERBOARD_INTERVAL=0.2) as url:
        yield url


@pytest.fixture
def redis_url(tmp_path):
    """A Redis server of its own on 127.0.0.1 (Debian's redis-server) until the test ends; skipped when it
    is not installed (scripts/setup.sh --browser installs it)."""
    import shutil
    import socket
    import subprocess
    import time

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                               "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def across_puzzle(inst, volume: str = "demo") -> int:
    """A crowd merge puzzle whose stored frame joins its two segments across sections (it has a pair picture).

    The first pair of neighbouring segments, largest contact first, that one section over the next can frame.
    """
    import numpy as np

    from game.app import store as st
    from game.geometry import BBox
    from game.puzzles.edit import PuzzleEdit
    from game.puzzles.framing import frame_across_sections, part_masks
    from game.segmentation.rag import RAG

    vol = inst.volumes.open(volume)
    agg = inst.agglomeration(volume)
    rag = RAG.from_arrays(vol.load_side("rag"))
    supervoxels = np.asarray(vol.read("supervoxels"))
    mapping = agg.mapping
    between = np.flatnonzero(mapping[rag.u] != mapping[rag.v])
    for e in between[np.argsort(-rag.area[between])]:
        edit = PuzzleEdit("merge", (int(rag.u[e]), int(rag.v[e])))
        a, b = part_masks(supervoxels, edit, agg)
        frame = frame_across_sections(a, b, BBox.from_shape(vol.shape), vol.shape)
        if frame is not None:
            parts = edit.parts(agg)
            return st.add_puzzles(inst.store, volume, [{
                "kind": "merge", "anchors": list(edit.anchors), "supervoxels": [],
                "segments": sorted([int(parts.first), int(parts.second)]), "location": list(frame.point),
                "score": 0.5, "truth": None, "frame": frame.to_dict()}])[0]
    raise AssertionError("no two segments of the volume can be framed across sections")
