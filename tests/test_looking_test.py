"""The looking test's export keeps the truth out of the looker's folder; its scorer counts like the issue asks."""

import csv
import json
import subprocess
import sys
from pathlib import Path

from conftest import oracle_puzzles

ROOT = Path(__file__).resolve().parents[1]


def _run(*argv):
    return subprocess.run([sys.executable, str(ROOT / "bench" / "looking_test.py"), *map(str, argv)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)


def test_export_then_score(inst, home, tmp_path):
    oracle_puzzles(inst)
    inst.store.close()
    out, truth = tmp_path / "looker", tmp_path / "kept" / "truth.json"
    assert "outside" in _run("export", "--home", home, "--volume", "demo", "--n", "6", "--out", out,
                             "--truth", out / "truth.json").stderr
    done = _run("export", "--home", home, "--volume", "demo", "--n", "6", "--out", out, "--truth", truth)
    assert done.returncode == 0, done.stderr
    key = json.loads(truth.read_text())
    assert len(key) == 6 and not any("truth" in p.name for p in out.rglob("*"))
    assert all((out / f"{name}-stack.png").is_file() and len(list((out / name).glob("*KEY*"))) == 2 for name in key)
    with open(out / "answers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    right = {r["puzzle"]: key[r["puzzle"]]["answer"] for r in rows}
    names = sorted(right)
    answers = {names[0]: "unsure", names[1]: {"yes": "no", "no": "yes"}[right[names[1]]],
               **{n: right[n] for n in names[2:]}}
    for r in rows:
        r["answer"] = answers[r["puzzle"]]
    with open(out / "answers.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, rows[0].keys())
        writer.writeheader()
        writer.writerows(rows)
    scored = _run("score", "--sheet", out / "answers.csv", "--truth", truth, "--json")
    result = json.loads(scored.stdout)
    assert result["answered"] == 5 and result["unsure"] == 1
    assert result["accuracy_answered"] == 4 / 5 and result["unsure_share"] == 1 / 6
    yes = sum(k["answer"] == "yes" for k in key.values())
    assert result["always_yes"] == yes / 6 and result["always_no"] == (6 - yes) / 6
    assert [w["puzzle"] for w in result["wrong"]] == [names[1]]
