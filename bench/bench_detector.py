"""How well the error detector ranks suspected errors, beside the boundary-only baseline.

(a) fibsem-gala (real FIB-SEM, ../shared/data): supervoxels train-ws, boundary
    train-p1 (gala's trained map) or the classical filter (the map the default
    detector was trained with); the candidates of the mean agglomeration of the
    slab z >= 35 at 0.3, 0.4 and 0.5 are ranked by the baseline, the default detector as
    shipped, the default detector fine-tuned on the slab z < 35 (its ground
    truth as answers, through `finetune`), and a detector trained on z < 35
    alone. Also the oracle: the segmentation after every correct edit.
(b) a demo volume of a seed never trained on (7).
(c) throughput: candidates found and scored per second on this CPU.
(d) fine-tuning with 200 labels from a new demo volume (seed 8): AUC on that
    volume's other candidates before and after.

    .venv/bin/python bench/bench_detector.py [--model models/detector.pt]

Prints a line per figure and a final JSON line. The real-data part is
skipped, with a note, when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import fastremap
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train_default_detector import SHAPE, Case, case_examples, demo_case, labelled_candidates, with_scores  # noqa: E402

from game.detection.candidates import find_candidates, scan_supervoxels
from game.detection.detect import ArrayVolume, evaluate_ranking, finetune, score_candidates
from game.detection.net import Examples, load_detector, predict, train_detector
from game.evaluation.metrics import evaluate, supervoxel_truth
from game.puzzles.edit import Moot, PuzzleEdit
from game.segmentation.agglomeration import Agglomeration
from game.segmentation.filters import membrane_probability
from game.segmentation.rag import build_rag

ROOT = Path(__file__).resolve().parents[1]
FIBSEM = ROOT.parent / "shared" / "data" / "fibsem-gala"
SPLIT_Z = 35
THRESHOLD = 0.5
# gala's trained map leaves few errors at 0.5, so the test slab is also cut more finely
TEST_THRESHOLDS = (0.3, 0.4, 0.5)
FIBSEM_TRAIN_THRESHOLDS = (0.3, 0.5, 0.7)
HELD_OUT_SEED, FINETUNE_SEED, FINETUNE_LABELS = 7, 8, 200
# the game's demo size: enough candidates for 200 answers and as many held out
FINETUNE_SHAPE = (64, 256, 256)


def figures(report: dict) -> dict:
    """The per-kind AUC and precision at 20 and 50, rounded."""
    keep = ("n", "positives", "auc", "precision@20", "precision@50")
    return {kind: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in report[kind].items() if k in keep}
            for kind in report}


def fibsem_case(z: slice, name: str, boundary_source: str) -> Case:
    """A slab of fibsem-gala with its watershed supervoxels and either boundary map."""
    import h5py

    def read(file):
        with h5py.File(FIBSEM / file, "r") as f:
            return f["stack"][z]

    image = read("train-image.h5")
    supervoxels = fastremap.renumber(read("train-ws.lzf.h5"), preserve_zero=True)[0].astype(np.uint32)
    probability = read("train-p1.lzf.h5") if boundary_source == "train-p1" else membrane_probability(image)
    boundary = np.rint(probability * 255).astype(np.uint8)
    groundtruth = read("train-gt.lzf.h5").astype(np.uint32)
    volume = ArrayVolume(image=image, boundary=boundary, supervoxels=supervoxels, groundtruth=groundtruth)
    sizes, _ = scan_supervoxels(volume, np.zeros((0, 2), np.int64), int(supervoxels.max()))
    return Case(name, volume, build_rag(supervoxels, boundary), supervoxel_truth(supervoxels, groundtruth), sizes)


def oracle(case: Case, agg: Agglomeration, candidates: list[dict]) -> dict:
    """Metrics before and after applying every candidate whose proposed edit is correct."""
    supervoxels, gt = case.volume.read("supervoxels"), case.volume.read("groundtruth")
    before = evaluate(gt, agg.mapping[supervoxels])
    fixed = Agglomeration(agg.mapping.copy())
    for candidate in sorted(candidates, key=lambda c: c["kind"] != "split"):
        if candidate["truth"]:
            try:
                PuzzleEdit.of(candidate).apply(fixed)
            except Moot:  # an earlier merge made it already
                pass
    after = evaluate(gt, fixed.mapping[supervoxels])
    keys = ("adapted_rand_error", "vi_split", "vi_merge")
    return {"before": {k: round(before[k], 4) for k in keys}, "after": {k: round(after[k], 4) for k in keys}}


def real_data(model, boundary_source: str) -> dict:
    """Rankings of the slab z >= 35 by the baseline and by detectors that never saw it."""
    train_case = fibsem_case(slice(0, SPLIT_Z), f"fibsem-gala z<{SPLIT_Z}", boundary_source)
    test_case = fibsem_case(slice(SPLIT_Z, None), f"fibsem-gala z>={SPLIT_Z}", boundary_source)
    parts = {threshold: case_examples(train_case, threshold) for threshold in FIBSEM_TRAIN_THRESHOLDS}
    # the most split segmentation gives the most answers of both kinds to fine-tune on
    tune_agg, _, tune_candidates = parts[FIBSEM_TRAIN_THRESHOLDS[0]]
    answers = [{**c, "answer": c["truth"]} for c in tune_candidates]
    tuned, tune_report = finetune(model, answers, train_case.volume, tune_agg, volume_name=train_case.name)
    scratch, _ = train_detector(Examples.concatenate([examples for _, examples, _ in parts.values()]), epochs=8)
    result = {"boundary": boundary_source, "finetune": tune_report}
    for threshold in TEST_THRESHOLDS:
        agg, test, candidates = case_examples(test_case, threshold)
        rankings = {"oracle": oracle(test_case, agg, candidates)}
        for label, scores in (("baseline", [c["score"] for c in candidates]),
                              ("default", predict(model, test)),
                              (f"default fine-tuned on z<{SPLIT_Z}", predict(tuned, test)),
                              (f"trained on z<{SPLIT_Z} only", predict(scratch, test))):
            rankings[label] = figures(evaluate_ranking(with_scores(candidates, scores)))
        result[f"threshold {threshold}"] = rankings
    return result


def held_out_demo(model) -> tuple[dict, dict]:
    """Rankings on an unseen demo volume with either boundary map, and the speed on the first."""
    rankings, speed = {}, None
    for source in ("network", "filter"):
        case = demo_case(HELD_OUT_SEED, SHAPE, source)
        agg, examples, candidates = case_examples(case, THRESHOLD)
        rankings[f"{source} boundary"] = {
            "baseline": figures(evaluate_ranking(candidates)),
            "detector": figures(evaluate_ranking(with_scores(candidates, predict(model, examples)))),
            "oracle": oracle(case, agg, candidates)}
        if speed is None:
            started = time.perf_counter()
            found = find_candidates(case.volume, agg, case.rag)
            found_at = time.perf_counter()
            score_candidates(case.volume, agg, found, model)
            scored_at = time.perf_counter()
            speed = {"candidates": len(found), "find_per_s": round(len(found) / (found_at - started), 1),
                     "score_per_s": round(len(found) / (scored_at - found_at), 1),
                     "end_to_end_per_s": round(len(found) / (scored_at - started), 1), "volume": list(SHAPE)}
    return rankings, speed


def finetune_gain(model) -> dict:
    """Fine-tune on the answers to 200 candidates of a new demo volume; rank its other candidates."""
    case = demo_case(FINETUNE_SEED, FINETUNE_SHAPE)
    agg, candidates = labelled_candidates(case, THRESHOLD)
    known = [c for c in candidates if c["truth"] is not None]
    order = np.random.default_rng(0).permutation(len(known))
    answers = [{**known[k], "answer": known[k]["truth"]} for k in order[:FINETUNE_LABELS]]
    held_out = [known[k] for k in order[FINETUNE_LABELS:]]
    tuned, report = finetune(model, answers, case.volume, agg, volume_name=case.name)
    before = score_candidates(case.volume, agg, held_out, model)
    after = score_candidates(case.volume, agg, held_out, tuned)
    return {"report": report, "held_out_before": figures(evaluate_ranking(before)),
            "held_out_after": figures(evaluate_ranking(after))}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "detector.pt"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    model = load_detector(args.model)
    result = {"model": args.model}
    for source in ("train-p1", "filter"):
        key = f"fibsem_gala_{source.replace('-', '_')}"
        result[key] = real_data(model, source) if FIBSEM.exists() else f"skipped: no real data at {FIBSEM}"
        print(f"{key}:", json.dumps(result[key]), file=sys.stderr, flush=True)
    result[f"demo_seed_{HELD_OUT_SEED}"], result["throughput"] = held_out_demo(model)
    print(f"demo seed {HELD_OUT_SEED}:", json.dumps(result[f"demo_seed_{HELD_OUT_SEED}"]), file=sys.stderr)
    print("throughput:", json.dumps(result["throughput"]), file=sys.stderr)
    result["finetune_demo"] = finetune_gain(model)
    print("fine-tuning:", json.dumps(result["finetune_demo"]), file=sys.stderr)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
