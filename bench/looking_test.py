"""The looking test: puzzles answered by looking at the images a player sees, never at the truth.

Two steps, so the person who looks never sees the answers:

``export`` writes N puzzles of an instance to a folder of PNGs — for each
puzzle its stack as the player sees it (every slice plain and with the
colours, the key slice, which the viewer opens on, marked), the key slice
at full size and, for a puzzle whose parts touch only across sections, its
pair picture (the two sections side by side, as the viewer opens it) —
with an answer sheet to fill in (``answers.csv``). The truth goes to a
separate file (``--truth``), outside that folder.

``score`` compares a filled answer sheet with that truth: accuracy on the
puzzles answered, the share of "not sure", the score of the blind strategies
(always yes, always no, answering by the badge) on the same puzzles, and
each wrong answer with the note the looker wrote, and the accuracy apart on
the puzzles the looking module calls hard to judge (a sliver, an island, a
gap at the volume's edge: :func:`game.puzzles.looking.obstacles`) and on the
rest; the simulated crowd answers both alike.

Puzzles are drawn with a clear truth (no near tie, :mod:`game.puzzles.truth`),
by default balanced: as many "yes" as "no" per kind, as gold puzzles are.

Run::

    python bench/looking_test.py export --home H --volume demo --n 40 --out looking/demo --truth truth-demo.json
    python bench/looking_test.py export ... --across 1   # only puzzles across sections (2: across a gap)
    python bench/looking_test.py export ... --obstacles with   # only puzzles the looking module calls hard
    python bench/looking_test.py export --home H --volume demo --n 20 --volume fib --n 10 ...  # one sheet, two volumes
    python bench/looking_test.py score --sheet looking/demo/answers.csv --truth truth-demo.json [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from game.app import images
from game.app import store as st
from game.app.instance import Instance
from game.app.settings import load_settings
from game.crowd.assignment import puzzle_across, puzzle_stack
from game.puzzles.edit import correct_answer, question_for
from game.puzzles.looking import obstacles, shown_frame
from game.puzzles.truth import has_clear_truth, puzzle_truth_margin

THUMB = 256
SHEET_FIELDS = ("puzzle", "kind", "question", "answer", "note")
BADGE = {"merge": "Are these one neurite? (orange and blue: two segments the computer split apart)",
         "split": "Are orange and blue one neurite? (where the computer would cut it)"}


def choose(puzzles: list[dict], n: int, *, balanced: bool, seed: int) -> list[dict]:
    """``n`` puzzles with a clear truth, half of each kind, as many of each answer per kind as there are.

    When a kind has too few of one answer (a volume whose splits are all
    wrong cuts), the rest of that kind's share is drawn at random, then from
    the other kind: the scorer reports the blind strategies on exactly the
    puzzles drawn.
    """
    rng = random.Random(seed)
    clear = [p for p in puzzles if has_clear_truth(p)]
    rng.shuffle(clear)
    chosen: list[dict] = []
    kinds = [kind for kind in ("merge", "split") if any(p["kind"] == kind for p in clear)]
    for k, kind in enumerate(kinds):
        mine = [p for p in clear if p["kind"] == kind]
        wanted = n // len(kinds) + (n % len(kinds) if k == 0 else 0)
        if balanced:
            sides = [[p for p in mine if correct_answer(kind, p["truth"]) == a] for a in ("yes", "no")]
            each = min(wanted // 2, *(len(side) for side in sides))
            picked = sides[0][:each] + sides[1][:each]
            picked += [p for p in mine if p not in picked][:wanted - len(picked)]
        else:
            picked = mine[:wanted]
        chosen += picked
    chosen += [p for p in clear if p not in chosen][:n - len(chosen)]
    rng.shuffle(chosen)
    return chosen


def stack_sheet(plain: list[Image.Image], overlay: list[Image.Image], title: str, key: int) -> Image.Image:
    """All slices, plain above and coloured below, the key slice framed in yellow."""
    pad, head, slices = 6, 28, len(plain)
    sheet = Image.new("RGB", (slices * (THUMB + pad) + pad, head + 2 * (THUMB + pad) + pad + 18), (20, 24, 36))
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, 8), title, fill=(235, 235, 235))
    for z in range(slices):
        x = pad + z * (THUMB + pad)
        for row, picture in enumerate((plain[z], overlay[z])):
            y = head + row * (THUMB + pad)
            sheet.paste(picture.convert("RGB").resize((THUMB, THUMB), Image.Resampling.BILINEAR), (x, y))
        label = f"slice {z + 1}" + (" (key)" if z == key else "")
        draw.text((x + 4, head + 2 * (THUMB + pad) + 2), label, fill=(255, 209, 102) if z == key else (190, 190, 190))
        if z == key:
            draw.rectangle((x - 3, head - 3, x + THUMB + 2, head + 2 * THUMB + pad + 2), outline=(255, 209, 102),
                           width=3)
    return sheet


def export(args) -> None:
    inst = Instance(args.home, load_settings({"HOME": args.home}))
    out, truth_path = Path(args.out), Path(args.truth)
    if out.resolve() in truth_path.resolve().parents:
        raise SystemExit("keep the truth file outside the exported folder: the looker must not see it")
    counts = args.n or [40]
    if len(counts) not in (1, len(args.volume)):
        raise SystemExit("give one --n, or one --n per --volume")
    chosen = []
    for volume, n in zip(args.volume, counts * len(args.volume) if len(counts) == 1 else counts):
        puzzles = [p for p in st.puzzles(inst.store, volume=volume, tutorial=None)
                   if (args.kind is None or p["kind"] == args.kind)
                   and (args.across is None or puzzle_across(p) >= args.across)
                   and (args.obstacles is None or bool(obstacles(shown_frame(p))) == (args.obstacles == "with"))
                   and p["id"] > args.made_after]
        chosen += choose(puzzles, n, balanced=not args.unbalanced, seed=args.seed)
    if len(args.volume) > 1:  # the volumes' puzzles mixed on the sheet
        random.Random(args.seed).shuffle(chosen)
    out.mkdir(parents=True, exist_ok=True)
    truth, rows = {}, []
    for number, puzzle in enumerate(chosen, start=1):
        name = f"p{number:02d}"
        folder = out / name
        folder.mkdir(exist_ok=True)
        plain, overlay = [], []
        slices, key = puzzle_stack(puzzle)  # as the player gets it: the stack's sections and the key slice
        for z in range(slices):
            for variant, pictures in (("plain", plain), ("overlay", overlay)):
                path, _ = images.puzzle_image(inst, puzzle["id"], z, variant)
                target = folder / f"slice{z + 1}-{variant}{'-KEY' if z == key else ''}.png"
                target.write_bytes(path.read_bytes())
                pictures.append(Image.open(target))
        stack_sheet(plain, overlay, f"{name}: {BADGE[puzzle['kind']]}", key).save(out / f"{name}-stack.png")
        both = Image.new("RGB", (2 * plain[key].width + 8, plain[key].height), (20, 24, 36))
        both.paste(plain[key].convert("RGB"), (0, 0))
        both.paste(overlay[key].convert("RGB"), (plain[key].width + 8, 0))
        both.save(out / f"{name}-key.png")
        if images.has_pair(puzzle):
            (out / f"{name}-pair.png").write_bytes(images.puzzle_image(inst, puzzle["id"], 0, "pair")[0].read_bytes())
        rows.append({"puzzle": name, "kind": puzzle["kind"], "question": question_for(puzzle["kind"]),
                     "answer": "", "note": ""})
        truth[name] = {"id": puzzle["id"], "volume": puzzle["volume"], "kind": puzzle["kind"],
                       "answer": correct_answer(puzzle["kind"], puzzle["truth"]),
                       "truth_margin": puzzle_truth_margin(puzzle),
                       "obstacles": obstacles(shown_frame(puzzle)),
                       "role": "practice" if puzzle["tutorial"] else "gold" if puzzle["gold"] else "crowd"}
    with open(out / "answers.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, SHEET_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    (out / "README.txt").write_text(
        "Answer each puzzle by looking only. For each pN: pN-stack.png shows every slice (top: plain EM, "
        "bottom: with the colours; the key slice, where the viewer opens, framed in yellow), pN-key.png the key "
        "slice at full size, and pN/ every slice at full size. Four short white ticks around the middle of the "
        "coloured pictures point at the spot the question is about (the spot itself is left clear); dark diagonal "
        "stripes are outside the volume, where nothing was imaged. Where the two colours never touch on one "
        "slice, the part on the key slice ends there and the other colour starts a slice (or a few) further at "
        "that spot: pN-pair.png then shows those two sections side by side at that spot (as the game opens such "
        "a puzzle), with the sections between below it.\n"
        "Merge puzzles ask 'Are these one neurite?': orange and blue are two segments the computer split apart.\n"
        "Split puzzles ask 'Are orange and blue one neurite?': they are where the computer would cut it.\n"
        "Fill the 'answer' column of answers.csv with yes, no or unsure, and say why in 'note'.\n")
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_text(json.dumps(truth, indent=1) + "\n")
    mix = {f"{kind} {a}": sum(t["kind"] == kind and t["answer"] == a for t in truth.values())
           for kind in ("merge", "split") for a in ("yes", "no")}
    print(f"exported {len(chosen)} puzzles to {out} ({mix}); truth in {truth_path}")


def score_sheet(answers: dict[str, str], truth: dict[str, dict]) -> dict:
    """Accuracy of looking and of the blind strategies on the same puzzles.

    Parameters
    ----------
    answers : {puzzle: 'yes' | 'no' | 'unsure' | ''}
    truth : {puzzle: {'kind', 'answer', ...}}
    """
    names = [n for n in truth if n in answers]
    missing = [n for n in truth if n not in answers or answers[n] == ""]
    given = {n: answers[n] for n in names if answers[n] in ("yes", "no", "unsure")}
    answered = [n for n in given if given[n] != "unsure"]
    right = [n for n in answered if given[n] == truth[n]["answer"]]
    result = {"puzzles": len(truth), "answered": len(answered), "unsure": sum(v == "unsure" for v in given.values()),
              "missing": len(missing),
              "accuracy_answered": len(right) / len(answered) if answered else None,
              "accuracy_all": len(right) / len(given) if given else None}
    result["unsure_share"] = result["unsure"] / len(given) if given else None
    scored = list(given)
    blind = {"always_yes": {n: "yes" for n in scored}, "always_no": {n: "no" for n in scored}}
    # the badge: the better constant answer for each kind, known in hindsight (an upper bound)
    badge = {}
    for kind in ("merge", "split"):
        mine = [n for n in scored if truth[n]["kind"] == kind]
        yes = sum(truth[n]["answer"] == "yes" for n in mine)
        badge.update({n: "yes" if 2 * yes >= len(mine) else "no" for n in mine})
    blind["badge"] = badge
    for strategy, picks in blind.items():
        result[strategy] = (sum(picks[n] == truth[n]["answer"] for n in scored) / len(scored)) if scored else None
    result["per_obstacle"] = {}
    for name in answered:
        label = "+".join(truth[name].get("obstacles") or ()) or "judgeable"
        got = result["per_obstacle"].setdefault(label, {"answered": 0, "right": 0})
        got["answered"] += 1
        got["right"] += name in right
    result["per_kind"] = {}
    for kind in ("merge", "split"):
        mine = [n for n in answered if truth[n]["kind"] == kind]
        result["per_kind"][kind] = {"answered": len(mine), "right": sum(n in right for n in mine)}
    best_blind = max((result[s] for s in blind if result[s] is not None), default=None)
    result["looking_minus_best_blind"] = (result["accuracy_all"] - best_blind
                                          if result["accuracy_all"] is not None and best_blind is not None else None)
    result["wrong"] = [{"puzzle": n, **truth[n], "given": given[n]} for n in answered if n not in right]
    return result


def score(args) -> None:
    with open(args.sheet, newline="") as f:
        rows = list(csv.DictReader(f))
    answers = {r["puzzle"]: (r.get("answer") or "").strip().lower() for r in rows}
    notes = {r["puzzle"]: r.get("note", "") for r in rows}
    truth = json.loads(Path(args.truth).read_text())
    result = score_sheet(answers, truth)
    for wrong in result["wrong"]:
        wrong["note"] = notes.get(wrong["puzzle"], "")
    if args.json:
        print(json.dumps(result))
        return
    pct = lambda v: "—" if v is None else f"{100 * v:.0f}%"
    print(f"{result['puzzles']} puzzles: {result['answered']} answered, {result['unsure']} not sure, "
          f"{result['missing']} left blank")
    print(f"looking: {pct(result['accuracy_answered'])} right on answered, {pct(result['accuracy_all'])} counting "
          f"'not sure' as wrong; not sure {pct(result['unsure_share'])}")
    print(f"blind on the same puzzles: always yes {pct(result['always_yes'])}, always no {pct(result['always_no'])}, "
          f"badge {pct(result['badge'])}")
    print("by what the looking module says stands in the way: " + "; ".join(
        f"{label} {v['right']}/{v['answered']}" for label, v in sorted(result["per_obstacle"].items())))
    for w in result["wrong"]:
        print(f"  wrong: {w['puzzle']} (puzzle {w['id']}, {w['kind']}) answered {w['given']}, truth {w['answer']}"
              f" — {w['note']}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="write puzzles as PNGs with an answer sheet, the truth elsewhere")
    ex.add_argument("--home", required=True, help="the instance folder")
    ex.add_argument("--volume", required=True, action="append",
                    help="a volume of the instance; repeat for several on one sheet")
    ex.add_argument("--n", type=int, action="append", help="puzzles of each --volume (one value: of each; 40)")
    ex.add_argument("--out", required=True, help="folder for the looker (no truth in it)")
    ex.add_argument("--truth", required=True, help="JSON file for the truth, outside --out")
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument("--unbalanced", action="store_true", help="draw at random instead of half yes, half no")
    ex.add_argument("--kind", choices=("merge", "split"),
                    help="only this kind (a volume whose other kind has one answer only: fibsem's cuts at 0.3)")
    ex.add_argument("--obstacles", choices=("with", "without"),
                    help="only puzzles with (or without) something in the way of judging them by looking")
    ex.add_argument("--made-after", type=int, default=0, metavar="ID",
                    help="only puzzles made after puzzle ID (those a change of the pool added to an instance)")
    ex.add_argument("--across", type=int, metavar="N",
                    help="only puzzles whose parts touch across N or more sections (1: any pair picture, 2: gaps)")
    sc = sub.add_parser("score", help="score a filled answer sheet against the truth")
    sc.add_argument("--sheet", required=True)
    sc.add_argument("--truth", required=True)
    sc.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    (export if args.command == "export" else score)(args)


if __name__ == "__main__":
    main()
