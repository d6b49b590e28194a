"""A real server on a free port and Debian's Chromium driven by Playwright.

The server runs as a subprocess (``run.py``) on an instance folder prepared
here with oracle puzzles (known truth, some gold) and a few practice puzzles,
so the browser sees exactly what players see. Screenshots and measured
figures go to pytest's temporary folder (``PROOFQUEST_ARTIFACTS=DIR`` keeps them
in DIR instead).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import running_server  # noqa: E402  (tests/conftest.py, shared with the other server tests)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS: Path | None = None  # set per session by the ``artifacts`` fixture
ADMIN = ("ada", "lovelace-1815")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="session", autouse=True)
def artifacts(tmp_path_factory) -> Path:
    """Where screenshots and figures go: pytest's temporary folder, or ``PROOFQUEST_ARTIFACTS``."""
    global ARTIFACTS
    keep = os.environ.get("PROOFQUEST_ARTIFACTS")
    ARTIFACTS = Path(keep) if keep else tmp_path_factory.mktemp("artifacts")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")


def build_instance(home: Path) -> tuple[dict[int, str], set[int]]:
    """The tiny demo volume, oracle puzzles, practice and teach copies of a few, an admin and one expert-queue puzzle.

    Returns the right answer ('yes' or 'no') of every playable puzzle, by id, and the teach puzzles' ids.
    """
    from conftest import TINY_SHAPE, _settings, oracle_puzzles

    from game.app import pipeline, players
    from game.app import store as st
    from game.app.instance import Instance

    inst = Instance(home, _settings(home))
    try:
        pipeline.make_demo(inst, "demo", shape=TINY_SHAPE, seed=3)
        ids, puzzles = oracle_puzzles(inst)
        merges = [p for p in puzzles if p["kind"] == "merge"]
        splits = [p for p in puzzles if p["kind"] == "split"]
        practice = [merges[0], merges[1], splits[0]]  # a true merge, a false merge, a true split
        st.add_puzzles(inst.store, "demo", [{**p, "gold": False, "tutorial": True} for p in practice])
        # teach copies: their outcome is shown on the puzzle once answered
        taught = [merges[2], merges[3], splits[1], merges[4], merges[5]]
        teach_ids = st.add_puzzles(inst.store, "demo", [{**p, "gold": True, "teach": True} for p in taught])
        players.register(inst.store, *ADMIN, role="admin")
        queued = next(i for i, p in zip(ids, puzzles) if not p["gold"])
        st.set_puzzle_state(inst.store, queued, "expert")
        answers = {i: "yes" if p["truth"] == (p["kind"] == "merge") else "no"
                   for i, p in [*zip(ids, puzzles), *zip(teach_ids, taught)] if i != queued}
        return answers, set(teach_ids)
    finally:
        inst.store.close()


@dataclass
class LiveServer:
    url: str
    answers: dict[int, str]  # the right answer of each playable puzzle
    teach: set[int]          # the puzzles whose outcome is shown once answered


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """ProofQuest serving a prepared instance folder, and the answers to its puzzles."""
    _require_chromium()
    home = tmp_path_factory.mktemp("browser-home")
    answers, teach = build_instance(home)
    with running_server(home) as url:
        yield LiveServer(url, answers, teach)


@pytest.fixture(scope="session")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_context(browser, live_server):
    """Make browser contexts (separate cookie jars: separate players), closed after the test.

    Every context must stay on 127.0.0.1 (the game works offline) and its pages must raise no
    JavaScript error and break no Content-Security-Policy rule; both are checked when the test ends.
    """
    made, strays, errors = [], [], []

    def make(**options):
        """A context on the session's server, or on ``base_url`` (a server of the test's own)."""
        options.setdefault("viewport", {"width": 1366, "height": 768})
        url = options.setdefault("base_url", live_server.url)
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        context.on("request", lambda r: r.url.startswith(url) or strays.append(r.url))
        context.on("page", lambda page: page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}")))
        # the Content-Security-Policy forbids inline script and style: a page that broke it says so on the console
        context.on("page", lambda page: page.on("console", lambda m: "Content Security Policy" in m.text
                                                 and errors.append(f"{page.url}: {m.text}")))
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()
    assert not strays, f"requests left the server: {strays}"
    assert not errors, f"JavaScript errors: {errors}"


def play_as_guest(context, *, via_landing: bool = False):
    """A new guest on the puzzle view, ready to answer.

    ``via_landing`` goes the way a person does: the landing page's button, then "Skip" in the
    tutorial. Otherwise the guest is made by one JSON request, which keeps the suite fast.
    """
    page = context.new_page()
    if via_landing:
        page.goto("/")
        page.get_by_role("button", name="Play as guest").click()
        page.wait_for_url("**/tutorial")
        page.get_by_role("link", name="Skip to the game").click()
        page.wait_for_url("**/play")
    else:
        token = context.request.get("/auth/csrf").json()["csrf_token"]
        reply = context.request.post("/auth/guest", headers={"X-CSRFToken": token, "Accept": "application/json"})
        assert reply.ok, reply.text()
        page.goto("/play")
    wait_for_puzzle(page)
    return page


def wait_for_puzzle(page) -> None:
    page.wait_for_selector("[data-testid=puzzle-image][data-state=ready]")


def shown_puzzle(page) -> int:
    return int(page.get_by_test_id("puzzle-image").get_attribute("data-puzzle-id"))


def answer_and_move_on(page, key: str) -> bool:
    """Answer the puzzle on screen and wait for the next; returns whether its outcome was shown first."""
    puzzle = shown_puzzle(page)
    page.keyboard.press(key)
    page.wait_for_function("""id => document.querySelector('[data-testid=feedback]').hidden === false
      || (document.querySelector('[data-testid=puzzle-image]').dataset.puzzleId !== String(id))""", arg=puzzle)
    taught = page.get_by_test_id("feedback").is_visible()
    if taught:
        page.keyboard.press("Enter")
    page.wait_for_function("""id => { const s = document.querySelector('[data-testid=puzzle-image]');
      return s.dataset.puzzleId !== String(id) && s.dataset.state === 'ready'; }""", arg=puzzle)
    return taught


def answer_key(live_server, page, *, right: bool = True) -> str:
    """The key that answers the puzzle on screen correctly (or, with ``right=False``, wrongly)."""
    answer = live_server.answers[shown_puzzle(page)]
    return {"yes": "y", "no": "n"}[answer if right else {"yes": "no", "no": "yes"}[answer]]


def screenshot(page, name: str, *, docs: bool = False) -> Path:
    """Save a screenshot among the artifacts; with ``docs`` and PROOFQUEST_DOCS_SCREENSHOTS=1, also
    refresh the README's small copy in docs/ (off by default, so test runs leave the tree clean)."""
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    if docs and os.environ.get("PROOFQUEST_DOCS_SCREENSHOTS") == "1":
        from PIL import Image
        # A 128-colour palette keeps the PNG small (well under 150 KB) and still reads clearly.
        with Image.open(path) as image:
            small = image.convert("RGB").resize((image.width * 3 // 4, image.height * 3 // 4), Image.LANCZOS)
            small.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(ROOT / "docs" / f"{name}.png",
                                                                             optimize=True)
    return path


def record_figure(name: str, value) -> None:
    """Keep a measured figure in the artifacts' browser-figures.json."""
    path = ARTIFACTS / "browser-figures.json"
    figures = json.loads(path.read_text()) if path.exists() else {}
    figures[name] = value
    path.write_text(json.dumps(figures, indent=2) + "\n")
