"""The edit log as an admin reads it, and reverting or re-applying one edit.

As in FlyWire's operation log, nothing is ever removed: a revert is a new
``undo`` entry that points at the edit it reverses, and re-applying is an undo
of that undo. An edit's *chain* is the edit followed by the undos stacked on
it; an odd number of undos means it is reverted now. Reverting or
re-applying always undoes the head of the chain. When a later edit that is
still in effect moved some of the same supervoxels, the revert is refused and
those edits are named: they would otherwise be silently kept on top of a
state they no longer fit.
"""

from __future__ import annotations

import numpy as np

from game.app import store as st
from game.app.instance import Instance
from game.errors import ProofQuestError


def edit_source(row: dict) -> str:
    """Who made an edit, as its provenance says: crowd, expert, known answer, revert or re-apply.

    An entry logged before sources were recorded is named by its author.
    """
    source = (row["provenance"] or {}).get("source")
    if source is None:
        return "crowd" if row["author"] == "consensus" else row["author"]
    return source


def chains(rows: list[dict]) -> dict[int, list[int]]:
    """For each edit that is not an undo: its seq followed by the undos stacked on it, in order."""
    heads: dict[int, int] = {}  # seq of any entry -> the edit at the bottom of its chain
    out: dict[int, list[int]] = {}
    for row in rows:
        if row["kind"] == "undo":
            base = heads[row["undoes"]]
            heads[row["seq"]] = base
            out[base].append(row["seq"])
        else:
            heads[row["seq"]] = row["seq"]
            out[row["seq"]] = [row["seq"]]
    return out


def in_effect(chain_of: dict[int, list[int]]) -> set[int]:
    """The edits (not undos) whose chain has an even number of undos: they shape the segmentation now."""
    return {seq for seq, chain in chain_of.items() if len(chain) % 2 == 1}


def log(inst: Instance, name: str) -> list[dict]:
    """Every entry, newest first, with its source, puzzle decision, counted votes and players, and state."""
    inst.volumes.open(name)
    rows = st.edit_log(inst.store, name)
    chain_of = chains(rows)
    live = in_effect(chain_of)
    voters = st.usernames(inst.store, (v["player"] for r in rows for v in r["provenance"].get("votes", [])))
    for row in rows:
        votes = row["provenance"].get("votes", [])
        row["source_label"] = edit_source(row)
        row["votes"] = [{"player": voters.get(v["player"], f"#{v['player']}"), "answer": v["answer"]}
                        for v in votes]
        counted = row["provenance"].get("counted")  # logged since votes count by standing
        row["counted_votes"] = len(counted) if counted is not None else sum(v["answer"] != "unsure" for v in votes)
        if row["kind"] == "undo":
            row["in_effect"] = None
        else:
            chain = chain_of[row["seq"]]
            row["in_effect"] = row["seq"] in live
            row["chain"] = chain[1:]
    return rows[::-1]


def later_dependents(agg, index: int, chain_of: dict[int, list[int]]) -> list[int]:
    """Later edits still in effect that moved any supervoxel of edit ``index`` again."""
    moved = agg.edits[index].supervoxels
    live = in_effect(chain_of)
    later = []
    for seq in sorted(live):
        if seq > index and np.isin(agg.edits[seq].supervoxels, moved).any():
            later.append(seq)
    return later


def toggle(inst: Instance, admin_id: int, name: str, seq, *, revert: bool) -> dict:
    """Revert (``revert=True``) or re-apply edit ``seq``: append the undo of its chain's head.

    Planned and logged in one write transaction; the live segmentation
    follows after the COMMIT (``LiveSegmentations.commit_edit``). Raises
    ProofQuestError, naming the later edits in the way, when the segmentation
    has moved on from the state the undo would return to.
    """
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise ProofQuestError(f"edit must be a log number, got {str(seq)[:40]!r}")
    inst.volumes.open(name)
    with inst.store.write():  # the log read, the check and the new entry see one state
        rows = st.edit_log(inst.store, name)
        chain_of = chains(rows)
        if seq not in chain_of:
            what = "an undo entry: revert or re-apply the edit it belongs to" if 0 <= seq < len(rows) \
                else "not in the log"
            raise ProofQuestError(f"edit #{seq} of {name!r} is {what}")
        chain = chain_of[seq]
        reverted = len(chain) % 2 == 0
        if reverted == revert:
            raise ProofQuestError(f"edit #{seq} is already {'reverted' if reverted else 'in effect'}")
        entry = undo_head(inst, name, seq, chain_of, revert=revert, author=f"admin:{admin_id}",
                          provenance={"source": "revert" if revert else "re-apply",
                                      "revert" if revert else "reapply": seq, "admin": admin_id})
    return {"volume": name, "edit": seq, "entry": entry, "in_effect": not revert}


def undo_head(inst: Instance, name: str, seq: int, chain_of: dict[int, list[int]], *, revert: bool, author: str,
              provenance: dict, puzzle_id: int | None = None) -> int:
    """Append the undo of the head of edit ``seq``'s chain (``chain_of``: :func:`chains` of the log as it is),
    inside the caller's write transaction; returns the new entry's number. Raises ProofQuestError (an
    EditConflict from the plan included) when the segmentation has moved on: a revert names the later edits
    still in effect that moved the same supervoxels."""
    agg = inst.agglomeration(name)
    if revert:
        blocking = later_dependents(agg, seq, chain_of)
        if blocking:
            raise ProofQuestError(
                f"cannot revert edit #{seq}: later edit{'s' if len(blocking) > 1 else ''} "
                f"{', '.join(f'#{b}' for b in blocking)} moved the same supervoxels again and depend on it; "
                "revert those first")
    return inst.segmentations.commit_edit(name, agg.plan_undo(chain_of[seq][-1]), author=author,
                                          puzzle_id=puzzle_id, provenance=provenance)
