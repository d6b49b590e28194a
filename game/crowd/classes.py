"""Classes: a teacher's students, join codes, nicknames and timed rounds.

Modelled on what teachers already use for live classroom games (Kahoot!: a
code to type, a nickname, nothing else) and for citizen science in class
(Zooniverse Classrooms: assignments tied to a workflow). A student is a
player bound to one class by a nickname and the device they joined from; a
round decides which puzzles its students get (:func:`round_rules`, asked by
puzzle assignment and by every vote), while every vote still goes through the
same consensus as anyone's. No Flask here; the rows live in the store.
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from game.app import store as st
from game.errors import ProofQuestError

# Read aloud and copied from a projector: no 0/O, no 1/I/L.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
NICKNAME_LENGTH = (2, 16)
CLASS_NAME_LENGTH = 60
ROUND_SECONDS = (3, 3 * 3600)
STUDENT_PREFIX = "student-"  # usernames of students; never shown (their nickname is)
DATA = Path(__file__).with_name("data")


@dataclass(frozen=True)
class RoundRules:
    """Which puzzles a round's students get.

    ``gold_share``: the share of puzzles with a known answer (None: the game's usual share);
    ``open_puzzles``: whether puzzles without a known answer are served at all;
    ``teach_first``: known-answer puzzles whose outcome is shown (teach) before secret gold ones.
    """

    gold_share: float | None
    open_puzzles: bool
    teach_first: bool = False


PUZZLE_SETS = {
    # only puzzles whose answer is known, the ones that show their outcome first: the class practises,
    # learns from each answer and changes nothing in the volume
    "practice": RoundRules(gold_share=1.0, open_puzzles=False, teach_first=True),
    # the game as everyone plays it
    "mixed": RoundRules(gold_share=None, open_puzzles=True),
    # gold-heavy, so that each student's accuracy is measured on many known answers
    "assessment": RoundRules(gold_share=0.6, open_puzzles=True),
}


# ----------------------------------------------------------------------------- join codes

def normalize_code(text) -> str:
    """A typed code in canonical form: upper case, spaces and dashes dropped."""
    if not isinstance(text, str):
        raise ProofQuestError("type the class code shown by your teacher")
    code = re.sub(r"[\s-]+", "", text).upper()
    if not code:
        raise ProofQuestError("type the class code shown by your teacher")
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        raise ProofQuestError(f"{text[:20]!r} is not a class code: codes have {CODE_LENGTH} letters and digits,"
                              " like the one on your teacher's screen")
    return code


def open_code(store: st.Store, class_id: int, hours: float, *, rng: random.Random | None = None) -> dict:
    """A fresh join code for the class (its old one stops working), valid for ``hours``."""
    choice = (rng or secrets.SystemRandom()).choice
    for _ in range(10):
        code = "".join(choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if st.join_code(store, code) is None:
            return st.open_join_code(store, class_id, code, time.time() + hours * 3600)
    raise ProofQuestError("could not find a free join code; try again")


def close_code(store: st.Store, class_id: int) -> None:
    """Stop new students from joining (those who joined can still come back)."""
    if not st.close_join_code(store, class_id):
        raise ProofQuestError("this class has no open join code")


def code_state(code: dict | None, now: float | None = None) -> str:
    """'open', 'expired', 'closed', or 'none' (no code)."""
    if code is None:
        return "none"
    if code["closed"] is not None:
        return "closed"
    return "expired" if code["expires"] <= (now or time.time()) else "open"


# ----------------------------------------------------------------------------- classes

def create_class(store: st.Store, teacher: dict, name, *, code_hours: float) -> dict:
    """A new class of ``teacher`` (a teacher or an admin) with an open join code."""
    if teacher is None or teacher["role"] not in ("teacher", "admin"):
        raise ProofQuestError("only teachers can make classes; ask an admin for the teacher role")
    if not isinstance(name, str) or not name.strip():
        raise ProofQuestError("give the class a name")
    name = " ".join(name.split())
    if len(name) > CLASS_NAME_LENGTH or not name.isprintable():
        raise ProofQuestError(f"a class name has at most {CLASS_NAME_LENGTH} printable characters")
    with store.write():
        cls = st.create_class(store, teacher["id"], name)
        open_code(store, cls["id"], code_hours)
    return st.class_(store, cls["id"])


def may_manage(viewer: dict | None, cls: dict) -> bool:
    """The class's own teacher, or an admin."""
    if viewer is None:
        return False
    return viewer["role"] == "admin" or (viewer["role"] == "teacher" and cls["teacher_id"] == viewer["id"])


def may_watch(store: st.Store, viewer: dict | None, cls: dict) -> bool:
    """Who may see a class's board: whoever manages it, and its own students."""
    if may_manage(viewer, cls):
        return True
    place = st.member(store, viewer["id"]) if viewer else None
    return place is not None and place["removed"] is None and place["class_id"] == cls["id"]


def visible_classes(store: st.Store, viewer: dict) -> list[dict]:
    """A teacher's own classes; every class for an admin."""
    if viewer["role"] == "admin":
        return st.classes(store)
    return st.classes(store, teacher_id=viewer["id"])


# ----------------------------------------------------------------------------- nicknames

@lru_cache(maxsize=1)
def _blocked_words() -> tuple[frozenset[str], frozenset[str]]:
    """(refused anywhere, refused as whole words) from data/blocked-words.txt."""
    anywhere, whole = set(), set()
    for line in (DATA / "blocked-words.txt").read_text().splitlines():
        word = line.strip().lower()
        if word and not word.startswith("#"):
            (whole if word.startswith("=") else anywhere).add(word.lstrip("="))
    return frozenset(anywhere), frozenset(whole)


_LOOKALIKE = str.maketrans("013457@$8!", "oieastasbi")


def _letters(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    return plain.translate(_LOOKALIKE)


def is_rude(nickname: str) -> bool:
    """Whether a nickname contains a word of the built-in list (spaced out, repeated or disguised too)."""
    anywhere, whole = _blocked_words()
    letters = _letters(nickname)
    joined = re.sub(r"[^a-z]", "", letters)
    squeezed = re.sub(r"(.)\1+", r"\1", joined)
    if any(w in joined or w in squeezed for w in anywhere):
        return True
    words = set(re.findall(r"[a-z]+", letters))
    words |= {re.sub(r"(.)\1+", r"\1", w) for w in words} | {joined, squeezed}
    return bool(words & whole)


def check_nickname(text) -> str:
    """A nickname as it will be shown (spaces tidied), or an error that says what is wrong with it."""
    if not isinstance(text, str) or not text.strip():
        raise ProofQuestError("choose a nickname")
    nickname = " ".join(text.split())
    low, high = NICKNAME_LENGTH
    if len(nickname) > high:
        raise ProofQuestError(f"a nickname has at most {high} characters")
    if len(nickname) < low:
        raise ProofQuestError(f"a nickname has at least {low} characters")
    if not re.fullmatch(r"[\w .'-]+", nickname) or nickname.lower().startswith(STUDENT_PREFIX):
        raise ProofQuestError("a nickname may use only letters, digits, spaces, dots, hyphens and apostrophes")
    if is_rude(nickname):
        raise ProofQuestError("please choose another nickname: that one is not allowed here")
    return nickname


@lru_cache(maxsize=1)
def _nickname_words() -> dict[str, tuple[str, ...]]:
    words, part = {}, None
    for line in (DATA / "nickname-words.txt").read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            part = line[1:-1]
            words[part] = ()
        elif line and not line.startswith("#"):
            words[part] += (line,)
    return words


def suggest_nickname(store: st.Store | None = None, class_id: int | None = None, *,
                     rng: random.Random | None = None) -> str:
    """A harmless nickname (adjective + noun) not yet taken in the class."""
    rng = rng or random.Random()
    words = _nickname_words()
    taken = {m["nickname"].lower() for m in st.members(store, class_id)} if store and class_id else set()
    for _ in range(50):
        name = f"{rng.choice(words['adjectives'])} {rng.choice(words['nouns'])}"
        if len(name) <= NICKNAME_LENGTH[1] and name.lower() not in taken:
            return name
    return f"{rng.choice(words['nouns'])} {rng.randrange(100, 1000)}"


# ----------------------------------------------------------------------------- students

def device_digest(token: str) -> str:
    """What the store keeps of a device's cookie: a digest, so a database copy cannot log anyone in."""
    return hashlib.sha256(token.encode()).hexdigest()


def _class_of_code(store: st.Store, code: str) -> tuple[dict, dict]:
    row = st.join_code(store, code)
    if row is None:
        raise ProofQuestError(f"no class has the code {code}; check it on your teacher's screen")
    return row, st.class_(store, row["class_id"])


def join(store: st.Store, code, nickname, device_token: str) -> dict:
    """A student joins a class with its code and a nickname, or comes back on the device they joined from.

    Returns ``{"player", "member", "class", "rejoined"}``. A device that
    already joined the class gets its student back, whatever nickname was
    typed: joining twice never makes a second student.
    """
    code = normalize_code(code)
    row, cls = _class_of_code(store, code)
    device = device_digest(device_token)
    known = st.member_by_device(store, cls["id"], device)
    if known is not None:
        return {"player": st.player(store, known["player_id"]), "member": known, "class": cls, "rejoined": True}
    state = code_state(row)
    if state == "closed":
        raise ProofQuestError(f"the code {code} is closed: your teacher stopped new students joining with it")
    if state == "expired":
        raise ProofQuestError(f"the code {code} has expired; ask your teacher for a new one")
    nickname = check_nickname(nickname)
    with store.write():
        player = st.create_player(store, f"{STUDENT_PREFIX}{secrets.token_hex(5)}", None, is_guest=True)
        member = st.add_member(store, cls["id"], player["id"], nickname, device)
    return {"player": player, "member": member, "class": st.class_(store, cls["id"]), "rejoined": False}


def rejoin(store: st.Store, class_id: int, device_token: str | None) -> dict | None:
    """The class's student who joined from this device, if any."""
    return st.member_by_device(store, class_id, device_digest(device_token)) if device_token else None


def rename_student(store: st.Store, class_id: int, player_id: int, nickname) -> dict:
    return st.rename_member(store, class_id, player_id, check_nickname(nickname))


def remove_student(store: st.Store, class_id: int, player_id: int) -> None:
    st.remove_member(store, class_id, player_id)


def student(store: st.Store, player_id: int) -> dict | None:
    """The player's place in a class with the class's name and the seconds left in its running round
    (None when none runs), or None for players who are not students."""
    place = st.member(store, player_id)
    if place is None or place["removed"] is not None:
        return None
    latest = st.latest_round(store, place["class_id"])
    now = time.time()
    return {**place, "class_name": st.class_(store, place["class_id"])["name"],
            "round_left": latest["ends"] - now if is_running(latest, now) else None}


# ----------------------------------------------------------------------------- rounds

def start_round(store: st.Store, class_id: int, puzzle_set, seconds) -> dict:
    if not isinstance(puzzle_set, str) or puzzle_set not in PUZZLE_SETS:  # a list or an object: no hash
        raise ProofQuestError(f"unknown puzzle set {str(puzzle_set)[:20]!r}: use {', '.join(PUZZLE_SETS)}")
    low, high = ROUND_SECONDS
    try:
        seconds = int(seconds)
    except (TypeError, ValueError, OverflowError):
        raise ProofQuestError(f"a round lasts a whole number of seconds, not {str(seconds)[:20]!r}") from None
    if not low <= seconds <= high:
        raise ProofQuestError(f"a round lasts {low} s to {high // 3600} h")
    return st.start_round(store, class_id, puzzle_set, seconds)


def round_of(store: st.Store, class_id: int, round_id: int) -> dict:
    """One of the class's rounds (a round of another class is refused as unknown)."""
    row = st.round_(store, round_id)
    if row is None or row["class_id"] != class_id:
        raise ProofQuestError(f"this class has no round {round_id}")
    return row


def end_round(store: st.Store, class_id: int, round_id: int) -> dict:
    row = round_of(store, class_id, round_id)
    if not is_running(row):
        raise ProofQuestError(f"round {round_id} has already ended")
    return st.end_round(store, round_id)


def is_running(row: dict | None, now: float | None = None) -> bool:
    return row is not None and row["ended"] is None and row["ends"] > (now or time.time())


def window(row: dict, now: float | None = None) -> tuple[float, float]:
    """The times a round's answers fall in: from its start to its end (or now, while it runs)."""
    now = now or time.time()
    return row["started"], min(row["ended"] or row["ends"], row["ends"], now)


def round_rules(store: st.Store, player_id: int) -> RoundRules | None:
    """The puzzles a student may get now, or None for a player who is not a student.

    A student plays only while their class has a round running; anything else
    is refused with a message that says why.
    """
    place = st.member(store, player_id)
    if place is None:
        return None
    if place["removed"] is not None:
        raise ProofQuestError("your teacher took you off this class; join again with the class code")
    latest = st.latest_round(store, place["class_id"])
    if latest is None:
        raise ProofQuestError("the round has not started yet: wait for your teacher to start it")
    if not is_running(latest):
        raise ProofQuestError("the round has ended: wait for your teacher to start the next one")
    return PUZZLE_SETS[latest["puzzle_set"]]
