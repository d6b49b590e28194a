"""Simulated players: play a running game through real Socket.IO clients.

Each player logs in as a guest over HTTP, connects with python-socketio and
answers puzzles from ground truth with its own accuracy (drawn around the
crowd's, some players at chance). With ``hard_accuracy``, puzzles the looking
module calls hard to judge (a sliver, an island, a gap at the volume's edge,
a decision at its side: :func:`game.puzzles.looking.obstacles` of the view)
are answered worse, as people who look may answer them
(``bench/looking_test.py`` measures it). The truth comes from the instance folder
that the server uses (``--home``), never from the server. Before and after,
the segmentation is scored against ground truth, beside the oracle: every
correct edit among the crowd's puzzles applied.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from dataclasses import dataclass

import numpy as np
import requests
import socketio

from game.app import pipeline
from game.app import players as accounts
from game.app import store as st
from game.app.instance import Instance
from game.errors import ProofQuestError
from game.evaluation import quality
from game.evaluation.quality import evaluate_mapping, truth_table
from game.puzzles.edit import Moot, PuzzleEdit, correct_answer
from game.puzzles.looking import obstacles, shown_frame
from game.puzzles.truth import supervoxel_truth
from game.segmentation.agglomeration import Agglomeration
from game.segmentation.rag import RAG


@dataclass(frozen=True)
class Crowd:
    players: int = 20
    accuracy: float = 0.8
    chance_share: float = 0.1
    votes_per_player: int = 10_000
    concentration: float = 30.0
    seed: int = 0
    patience: float = 0.0  # seconds a player keeps asking when no puzzle is left before leaving
    hard_accuracy: float | None = None  # the crowd's mean accuracy on puzzles hard to judge; None: ``accuracy``

    def accuracies(self) -> np.ndarray:
        """Per-player accuracy: Beta around ``accuracy``; ``chance_share`` of players at 0.5."""
        if not 0.0 < self.accuracy < 1.0:
            raise ProofQuestError(f"--accuracy {self.accuracy} must lie strictly between 0 and 1")
        rng = np.random.default_rng(self.seed)
        a = self.accuracy * self.concentration
        drawn = rng.beta(a, self.concentration - a, size=self.players)
        at_chance = rng.random(self.players) < self.chance_share
        return np.where(at_chance, 0.5, drawn)

    def hard_accuracies(self) -> np.ndarray:
        """Per-player accuracy on puzzles hard to judge: each player's :meth:`accuracies` moved toward chance
        so that the mean of those not at chance is about ``hard_accuracy`` (all of ``accuracies`` without it)."""
        accuracies = self.accuracies()
        if self.hard_accuracy is None:
            return accuracies
        if not 0.5 <= self.hard_accuracy <= self.accuracy:
            raise ProofQuestError(f"--hard-accuracy {self.hard_accuracy} must lie between 0.5 (chance) and "
                                  f"--accuracy {self.accuracy}")
        return 0.5 + (accuracies - 0.5) * (self.hard_accuracy - 0.5) / (self.accuracy - 0.5)


def oracle_quality(inst: Instance, name: str) -> dict:
    """The metrics with every correct crowd-puzzle edit applied to the current segmentation."""
    volume = inst.volumes.open(name)
    agg = Agglomeration(np.array(inst.agglomeration(name).mapping))
    for puzzle in st.puzzles(inst.store, volume=name, gold=False):
        if puzzle["truth"]:
            try:
                PuzzleEdit.of(puzzle).apply(agg)
            except Moot:
                pass
    return evaluate_mapping(truth_table(volume), agg.mapping, RAG.from_arrays(volume.load_side("rag")))


def log_in(http: requests.Session, url: str, action: str, credentials: dict | None = None) -> dict:
    """Log ``http`` in at the game at ``url`` as a person's browser does (the form token, then
    ``POST /auth/<action>``: guest, register or login); the reply (the player and the session's new token)."""
    token = http.get(f"{url}/auth/csrf", timeout=30).json()["csrf_token"]
    reply = http.post(f"{url}/auth/{action}", headers={"X-CSRFToken": token, "Accept": "application/json"},
                      json=credentials, timeout=30)
    if reply.status_code != 200:
        raise ProofQuestError(f"could not log in at {url}: {reply.status_code} {reply.text[:200]}")
    return reply.json()


class Player:
    """One simulated player: an HTTP session for log-in and a Socket.IO client for play."""

    def __init__(self, url: str, accuracy: float, truths, rng: random.Random, *, username: str | None = None,
                 hard_accuracy: float | None = None, password: str | None = None, returning: bool = False):
        """A guest, or with ``username`` a registered player: signed up (with ``password``, else a random one),
        or with ``returning`` logged in again to that account (a later session of the same player); it answers
        puzzles hard to judge by looking with ``hard_accuracy`` (default ``accuracy``)."""
        self.url, self.accuracy, self.truths, self.rng = url.rstrip("/"), accuracy, truths, rng
        self.hard_accuracy = accuracy if hard_accuracy is None else hard_accuracy
        self.http = requests.Session()
        if username is None:
            reply = log_in(self.http, self.url, "guest")
        else:
            reply = log_in(self.http, self.url, "login" if returning else "register",
                           {"username": username, "password": password or f"pw-{rng.getrandbits(64):x}"})
        self.id = reply["player"]["id"]
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        self.sio = socketio.Client(reconnection=False)
        self.sio.connect(self.url, headers={"Cookie": cookie}, transports=["websocket"], wait_timeout=30)
        self.votes = 0
        self.late = 0
        self.timeouts = 0
        self.waits = 0  # times no puzzle was left and the player waited for more
        self.throttled = 0  # votes the server's vote limit refused: the player waited and asked again

    def answer(self, puzzle: dict) -> str:
        truth = self.truths(puzzle["id"])
        if truth["truth"] is None:  # a near tie or unlabelled: the picture does not decide it either
            return self.rng.choice(("yes", "no"))
        correct = correct_answer(truth["kind"], truth["truth"])
        hard = self.hard_accuracy != self.accuracy and obstacles(shown_frame(truth))
        if self.rng.random() < (self.hard_accuracy if hard else self.accuracy):
            return correct
        return "no" if correct == "yes" else "yes"

    def play(self, limit: int, patience: float = 0.0) -> None:
        """Answer until ``limit`` votes, or until no puzzle has come for ``patience`` seconds.

        With no patience a player leaves at the first "no puzzle left", as
        before; with some, it comes back every ``PATIENCE_STEP`` seconds, as a
        player on a living pool would while the decisions' rescans make new
        puzzles. A vote refused by the server's vote limit (``RATE_LIMIT_VOTES``)
        waits ``THROTTLE_STEP`` seconds and the player asks again.
        """
        waited = 0.0
        while self.votes < limit:
            got = self.sio.call("next_puzzle", {}, timeout=60)
            if not got.get("ok"):
                if waited >= patience:
                    return  # nothing left for this player
                time.sleep(PATIENCE_STEP)
                waited += PATIENCE_STEP
                self.waits += 1
                continue
            waited = 0.0
            puzzle = got["puzzle"]
            try:
                ack = self.sio.call("vote", {"puzzle": puzzle["id"], "answer": self.answer(puzzle),
                                             "ms": self.rng.randint(1500, 8000), "ticket": puzzle["ticket"]},
                                    timeout=60)
            except socketio.exceptions.TimeoutError:
                self.timeouts += 1  # a player on an overloaded server moves on; the count is reported
                if self.timeouts > 10:
                    raise
                continue
            if not ack.get("ok"):
                if "was decided" in ack.get("error", ""):
                    self.late += 1  # settled by others while this player looked: a real player sees it too
                    continue
                if "too many requests" in ack.get("error", ""):
                    # faster than RATE_LIMIT_VOTES lets a person vote (a server's default limits are on): it
                    # waits, as the refusal asks, and asks again
                    self.throttled += 1
                    time.sleep(THROTTLE_STEP)
                    continue
                raise ProofQuestError(f"vote refused: {ack.get('error')}")
            self.votes += 1

    def close(self) -> None:
        self.sio.disconnect()
        self.http.close()


def current_truth(inst: Instance, puzzle: dict, known) -> dict:
    """A crowd puzzle with ``truth`` as its edit is now, in the live segmentation, as a player sees it.

    Its pictures are drawn again when an edit changes its parts, so a player
    answers about the parts as they are, not as they were when the pool made
    it (a wrong merge onto one of its segments may have made its merge wrong
    since). Known-answer puzzles keep the truth they were made with.
    ``known(volume)`` gives :func:`game.puzzles.truth.supervoxel_truth`.
    """
    truth = known(puzzle["volume"])
    if puzzle["gold"] or puzzle["tutorial"] or truth is None:
        return puzzle
    try:
        now = PuzzleEdit.of(puzzle).is_correct(inst.agglomeration(puzzle["volume"]), *truth)
    except Moot:
        now = None
    return {**puzzle, "truth": now}


def decisions(inst: Instance) -> dict:
    """How the crowd's retired puzzles compare with the truth."""
    rows = [p for p in st.puzzles(inst.store, gold=False) if p["truth"] is not None]
    retired = [p for p in rows if p["state"] == "retired"]
    wrong = sum(1 for p in retired if bool(p["decision"]) != bool(p["truth"]))
    votes = sum(p["n_votes"] for p in retired)
    return {"puzzles": len(rows), "retired": len(retired), "expert": sum(p["state"] == "expert" for p in rows),
            "moot": sum(p["state"] == "moot" for p in rows),
            "votes_per_retired": votes / len(retired) if retired else None,
            "wrong_share": wrong / len(retired) if retired else None}


def expert_settles(inst: Instance, url: str, known) -> dict:
    """An expert settles the expert queue through the admin routes, deciding each puzzle by its truth now.

    The expert is an admin account made for the purpose; it logs in over HTTP
    and answers ``POST /admin/api/expert/<id>`` as a person on the admin page
    does: apply when the puzzle's edit is right in the segmentation as it is,
    reject otherwise (a moot or unlabelled one included). A puzzle an earlier
    decision of the expert's left no longer waiting is skipped. Once done the
    account is made a plain player again (its decisions stay attributed to
    it); its password was random and never shown. Returns the counts of
    applied, rejected and skipped puzzles.
    """
    url = url.rstrip("/")
    username, password = f"sim-expert-{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    accounts.register(inst.store, username, password, role="admin")
    http = requests.Session()
    try:
        token = log_in(http, url, "login", {"username": username, "password": password})["csrf_token"]
        headers = {"X-CSRFToken": token, "Accept": "application/json"}
        queue = http.get(f"{url}/admin/api/expert", headers=headers, timeout=60).json()["puzzles"]
        counts = {"applied": 0, "rejected": 0, "skipped": 0}
        for queued in queue:
            truth = current_truth(inst, st.puzzle(inst.store, queued["id"]), known)["truth"]
            decision = "apply" if truth else "reject"
            reply = http.post(f"{url}/admin/api/expert/{queued['id']}", headers=headers,
                              json={"decision": decision}, timeout=120)
            if reply.status_code == 400 and "not waiting" in reply.text:
                counts["skipped"] += 1
                continue
            if reply.status_code != 200:
                raise ProofQuestError(f"the expert's decision on puzzle {queued['id']} was refused: "
                                      f"{reply.status_code} {reply.text[:200]}")
            counts["applied" if decision == "apply" else "rejected"] += 1
        return counts
    finally:
        http.close()
        st.set_role(inst.store, username, "player")


def run(inst: Instance, url: str, crowd: Crowd, *, progress=None, expert: bool = False) -> dict:
    """Play the game at ``url`` with a simulated crowd; the segmentation quality before, after and oracle.

    With ``expert``, once the crowd has left an expert settles what it sent to
    the expert queue (:func:`expert_settles`); its gain is reported apart
    (``gap_closed["expert"]``, ``after_expert``), the crowd's figures are
    those before it.
    """
    live = st.live_volumes(inst.store)
    names = [n for n in inst.volumes.names() if inst.volumes.open(n).has("groundtruth")
             and st.puzzle_count(inst.store, n) and live.get(n, True)]
    if not names:
        raise ProofQuestError(f"no volume in {inst.home} has both ground truth and puzzles; start the game "
                              "once (python run.py) so it prepares the demo, and pass the same --home")
    try:
        requests.get(f"{url.rstrip('/')}/healthz", timeout=10).raise_for_status()
    except requests.RequestException as exc:
        raise ProofQuestError(f"no ready game at {url} ({exc}); start it with python run.py --home {inst.home}")
    known = {n: supervoxel_truth(inst.volumes.open(n), inst.agglomeration(n).n_supervoxels) for n in names}

    def truths(puzzle_id: int) -> dict:  # read when asked: the living pool adds puzzles as the crowd decides
        return current_truth(inst, st.puzzle(inst.store, puzzle_id), known.get)
    before = {n: pipeline.evaluate_volume(inst, n) for n in names}
    oracle = {n: oracle_quality(inst, n) for n in names}
    votes_at_start = st.vote_count(inst.store)
    players = [Player(url, float(a), truths, random.Random(crowd.seed * 1000 + i), hard_accuracy=float(h))
               for i, (a, h) in enumerate(zip(crowd.accuracies(), crowd.hard_accuracies()))]
    errors: list[BaseException] = []

    def play(player: Player) -> None:
        try:
            player.play(crowd.votes_per_player, crowd.patience)
        except BaseException as exc:  # reported after all threads end
            errors.append(exc)

    started = time.perf_counter()
    threads = [threading.Thread(target=play, args=(p,)) for p in players]
    for t in threads:
        t.start()
    curve, next_point = [], 0  # (votes, VI) as the crowd goes: where its time pays most
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        cast = sum(p.votes for p in players)
        if cast >= next_point:
            q = pipeline.evaluate_volume(inst, names[0])
            curve.append((cast, q["vi_split"] + q["vi_merge"], q["adapted_rand_error"]))
            next_point = cast + CURVE_STEP
        if progress:
            progress(cast, crowd.players * crowd.votes_per_player)
    for p in players:
        p.close()
    if errors:
        raise errors[0]
    seconds = time.perf_counter() - started
    after = {n: pipeline.evaluate_volume(inst, n) for n in names}
    votes = st.vote_count(inst.store) - votes_at_start
    volumes = {n: _gains(inst, n, before[n], after[n], oracle[n], votes) for n in names}
    crowd_decisions = decisions(inst)  # the crowd's, before any expert settles its queue
    settled = None
    if expert:
        settled = expert_settles(inst, url, known.get)
        for n in names:
            volumes[n] = _with_expert(volumes[n], pipeline.evaluate_volume(inst, n))
    first = names[0]
    q = after[first]
    curve.append((votes, q["vi_split"] + q["vi_merge"], q["adapted_rand_error"]))
    return {**volumes[first], "votes": votes, "seconds": round(seconds, 1), "volumes": volumes,
            "curve": [{"votes": v, "vi": vi, "adapted_rand_error": are} for v, vi, are in curve],
            "vi_per_player_minute_first_quarter": _early_rate(curve, votes),
            "decisions": crowd_decisions, "expert_decisions": settled,
            "accuracies": [round(float(a), 3) for a in crowd.accuracies()],
            "vote_timeouts": sum(p.timeouts for p in players), "waits": sum(p.waits for p in players),
            "throttled": sum(p.throttled for p in players)}


# Guided Proofreading's decision time (Haehn et al. 2018): what a player-minute is taken as.
SECONDS_PER_ANSWER = 6.2
CURVE_STEP = 250  # votes between two points of the quality curve
PATIENCE_STEP = 2.0  # seconds a patient player waits before asking for a puzzle again
THROTTLE_STEP = 1.0  # seconds a player whose vote the server's rate limit refused waits before asking again


def _with_expert(gains: dict, after_expert: dict) -> dict:
    """A volume's :func:`_gains` with what the expert's decisions added after the crowd."""
    initial, limit = gains["initial"], gains["limit"]
    total = quality.gap_closed(initial, after_expert, limit)
    return {**gains, "after_expert": after_expert,
            "gap_closed": {**gains["gap_closed"], "with_expert": total,
                           "expert": {k: v - gains["gap_closed"]["total"][k] for k, v in total.items()}}}


def _early_rate(curve: list[tuple], votes: int) -> float | None:
    """VI gained per player-minute over the first quarter of the crowd's votes (the best-ranked puzzles)."""
    quarter = [(v, vi) for v, vi, _ in curve if v <= votes / 4]
    if len(quarter) < 2 or quarter[-1][0] == quarter[0][0]:
        return None
    (v0, vi0), (v1, vi1) = quarter[0], quarter[-1]
    return (vi0 - vi1) / ((v1 - v0) * SECONDS_PER_ANSWER / 60)


def _gains(inst: Instance, name: str, before: dict, after: dict, oracle: dict, votes: int) -> dict:
    """A volume's quality from the automatic segmentation to the crowd's, beside the supervoxel limit.

    ``initial`` is the automatic segmentation, ``before`` the state the crowd
    found (the known answers applied), ``after`` the crowd's result. The true
    gap is initial − limit; ``gap_closed`` splits what closed it between the
    known answers and the crowd.
    """
    gap = pipeline.quality_gap(inst, name)
    initial, limit = gap["initial"], gap["limit"]
    vi = before["vi_split"] + before["vi_merge"] - after["vi_split"] - after["vi_merge"]
    minutes = votes * SECONDS_PER_ANSWER / 60
    return {"initial": initial, "before": before, "after": after, "oracle": oracle, "limit": limit,
            "gap_closed": {"known_answers": quality.gap_closed(initial, before, limit),
                           "crowd": {k: v - quality.gap_closed(initial, before, limit)[k]
                                     for k, v in quality.gap_closed(initial, after, limit).items()},
                           "total": quality.gap_closed(initial, after, limit),
                           "oracle": quality.gap_closed(initial, oracle, limit)},
            "vi_per_player_minute": vi / minutes if minutes else None}
