"""The players as an admin sees them: reliability, gold record, pace, and patterns worth a look.

A pattern is a reason to look, not proof: a careful expert may answer fast, a
class may share one school address. The admin decides, and may suspend a
player: their votes stay recorded but stop counting in every puzzle still
open (``store.standings`` counts a vote only from an established player who
is not suspended). The player is not told.
"""

from __future__ import annotations

from game.app import store as st
from game.app.instance import Instance
from game.crowd.votes import redecide_soon
from game.errors import ProofQuestError

MIN_ANSWERS = 20  # patterns are judged on at least this many answers
ONE_ANSWER_SHARE = 0.95  # "always the same answer": this share of yes/no answers on one side
FAST_SHARE = 0.5  # "faster than the images load": this share of answers under FAST_ANSWER_MS


def patterns(row: dict, *, fast_ms: int, same_address: int) -> list[str]:
    """The suspicious patterns in one player's activity row (``store.player_activity``)."""
    found = []
    decided = row["yes"] + row["no"]
    if decided >= MIN_ANSWERS and max(row["yes"], row["no"]) >= ONE_ANSWER_SHARE * decided:
        found.append(f"answers {'yes' if row['yes'] > row['no'] else 'no'} "
                     f"{100 * max(row['yes'], row['no']) / decided:.0f}% of the time")
    if row["answers"] >= MIN_ANSWERS and row["fast"] >= FAST_SHARE * row["answers"]:
        found.append(f"{100 * row['fast'] / row['answers']:.0f}% of answers in under {fast_ms} ms, "
                     "before the slices could be looked at")
    if row["same_address"] >= same_address:
        found.append(f"one of {row['same_address']} accounts made from the same address")
    return found


def player_report(inst: Instance) -> list[dict]:
    """Every player with answers per day (on the days they played), gold accuracy and the patterns found."""
    fast_ms, same_address = inst.settings["FAST_ANSWER_MS"], inst.settings["SAME_ADDRESS_ACCOUNTS"]
    rows = st.player_activity(inst.store, fast_ms=fast_ms)
    voice_of = st.voices_of(inst.store)
    names = {r["id"]: r["username"] for r in rows}
    members: dict[int, list[str]] = {}
    for p, v in sorted(voice_of.items()):
        members.setdefault(v, []).append(names.get(p, f"#{p}"))
    for row in rows:
        row["answers_per_day"] = row["answers"] / max(1, row["active_days"])  # on the days they played
        row["gold_accuracy"] = row["gold_right"] / row["gold_answers"] if row["gold_answers"] else None
        row["patterns"] = patterns(row, fast_ms=fast_ms, same_address=same_address)
        voice = voice_of.get(row["id"])
        row["voice"] = voice
        if voice is not None:  # game.crowd.voices: found by the server, acted on already
            others = sorted(n for n in members[voice] if n != row["username"])
            row["patterns"].append(f"answers as one with {', '.join(others[:3])}"
                                   f"{f' and {len(others) - 3} more' if len(others) > 3 else ''}: "
                                   "their votes count as one")
        if row.get("one_sided") == 1:  # game.crowd.reliability.one_sided_evidence: acted on already
            row["patterns"].append("backs the edit on crowd puzzles whatever they show: their votes no longer "
                                   "count (suspend and lift to let them count again)")
        row["suspended"] = bool(row["suspended"])
    return rows


def suspend(inst: Instance, admin_id: int, player_id, suspended) -> dict:
    """Suspend a player (their votes stop counting in open puzzles) or lift the suspension."""
    if isinstance(player_id, bool) or not isinstance(player_id, int) or not 0 < player_id < 2**63:
        raise ProofQuestError(f"player must be a player's id, got {str(player_id)[:40]!r}")
    if not isinstance(suspended, bool):
        raise ProofQuestError("suspended is true or false")
    if player_id == admin_id and suspended:
        raise ProofQuestError("you cannot suspend yourself")
    target = st.player(inst.store, player_id)
    if target is None:
        raise ProofQuestError(f"there is no player {player_id}")
    if target["role"] == "admin" and suspended:
        raise ProofQuestError(f"{target['username']} is an admin; change their role first")
    result = st.set_suspended(inst.store, player_id, suspended)
    inst.standing_changed({player_id: None})  # their votes on open puzzles count again, or stop counting
    redecide_soon(inst)
    return result
