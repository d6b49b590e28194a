"""Train the default error detector, models/detector.pt, on generated demo volumes.

For each demo seed the game's own pipeline makes a segmentation with errors:
the demo image → a boundary map → watershed supervoxels → RAG → mean
agglomeration at thresholds around the game's default (0.5), so that the
detector sees segmentations both too split and too merged. The boundary maps
are those the game makes: the boundary network's (models/boundary_unet.pt,
the demo volume) and the classical filter's (game.segmentation.filters, imported volumes
that bring no boundary map). Candidates are labelled from the exact ground
truth. The seeds are not those the boundary network trained or was tested on
(0-4), so its maps are as good here as on a new volume; seed 5 chooses the
epoch; the bench's seeds (7, 8) are never seen.

    .venv/bin/python bench/train_default_detector.py            # about 10 min on 2 cores
    .venv/bin/python bench/train_default_detector.py --quick    # a smoke run, 1 min

Writes models/detector.pt (weights + model card) and models/detector.md, and
prints one JSON line with the validation figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from game.detection.candidates import find_candidates, scan_supervoxels
from game.detection.detect import ArrayVolume, candidate_examples, evaluate_ranking
from game.detection.net import Examples, predict, save_detector, train_detector
from game.evaluation.metrics import supervoxel_truth
from game.puzzles.edit import label_edits
from game.segmentation.agglomeration import Agglomeration
from game.segmentation.boundary import predict_boundary
from game.segmentation.filters import membrane_probability
from game.segmentation.merging import agglomerate
from game.segmentation.rag import build_rag
from game.segmentation.unet import load_model
from game.segmentation.watershed import watershed_supervoxels
from game.volumes.synthetic import DemoSpec, generate

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SEEDS = (11, 12, 13, 14)
VALIDATION_SEED = 5
SHAPE = (32, 192, 192)
# (boundary map, agglomeration threshold) of each training segmentation of a seed
SEGMENTATIONS = (("network", 0.45), ("network", 0.55), ("filter", 0.5))
GAME_THRESHOLD = 0.5
BOUNDARY_MODEL = ROOT / "models" / "boundary_unet.pt"


@dataclass
class Case:
    """One volume ready for candidate finding: layers, RAG and ground truth per supervoxel."""

    name: str
    volume: ArrayVolume
    rag: object
    sv_truth: np.ndarray
    sizes: np.ndarray


def boundary_map(image: np.ndarray, source: str) -> np.ndarray:
    """uint8 boundary map from the boundary network or the classical filter, as the game makes them."""
    if source == "network":
        return predict_boundary(image, None, load_model(BOUNDARY_MODEL), device="cpu")
    return np.rint(membrane_probability(image) * 255).astype(np.uint8)


def demo_case(seed: int, shape=SHAPE, boundary_source: str = "network") -> Case:
    """A demo volume through the game's segmentation pipeline (boundary map, watershed, RAG)."""
    spec = DemoSpec(shape=tuple(shape), seed=seed)
    image, groundtruth = generate(spec)
    boundary = boundary_map(image, boundary_source)
    relative = tuple(r / min(spec.resolution) for r in spec.resolution)
    supervoxels = watershed_supervoxels(boundary, sampling=relative)
    volume = ArrayVolume(image=image, boundary=boundary, supervoxels=supervoxels, groundtruth=groundtruth)
    sizes, _ = scan_supervoxels(volume, np.zeros((0, 2), np.int64), int(supervoxels.max()))
    return Case(f"demo seed {seed} {'x'.join(map(str, shape))} {boundary_source} boundary", volume, build_rag(supervoxels, boundary),
                supervoxel_truth(supervoxels, groundtruth), sizes)


def labelled_candidates(case: Case, threshold: float) -> tuple[Agglomeration, list[dict]]:
    agg = Agglomeration(agglomerate(case.rag, threshold))
    return agg, label_edits(find_candidates(case.volume, agg, case.rag), agg, case.sv_truth, sizes=case.sizes)


def case_examples(case: Case, threshold: float) -> tuple[Agglomeration, Examples, list[dict]]:
    """The segmentation, and the network inputs of its candidates with a known truth and those candidates."""
    agg, candidates = labelled_candidates(case, threshold)
    examples, keep = candidate_examples(case.volume, agg, candidates, labels=[c["truth"] for c in candidates])
    return agg, examples, [candidates[k] for k in keep]


def with_scores(candidates: list[dict], scores) -> list[dict]:
    return [{**c, "score": float(s)} for c, s in zip(candidates, scores)]


def model_card_markdown(card: dict) -> str:
    def number(value, digits):
        return "-" if value is None else f"{value:.{digits}f}"

    rows = "\n".join(f"| {source} | {kind} | {v['baseline'][kind]['n']} | {v['baseline'][kind]['positives']} | "
                     f"{number(v['baseline'][kind]['auc'], 3)} | {number(v['detector'][kind]['auc'], 3)} | "
                     f"{number(v['baseline'][kind]['precision@20'], 2)} | "
                     f"{number(v['detector'][kind]['precision@20'], 2)} |"
                     for source, v in card["validation"].items() for kind in ("merge", "split"))
    segmentations = ", ".join(f"{source} boundary at {threshold}" for source, threshold in card["segmentations"])
    data = "\n".join(f"- {t['volume']}: {t['labels']} labels ({t['source']}, {t['date']})" for t in card["trained_on"])
    return f"""# Error detector (models/detector.pt)

A small 2.5D CNN (game/detector_net.py, {card['parameters']:,} parameters) that scores each
suspected error, P(the proposed edit is correct), from 3 sections x 64x64 px of EM image,
boundary map and the masks of the two parts, plus boundary and size features, as a learned
correction to the boundary-only baseline. Both kinds (merge = false split, split = false merge)
share the trunk; each has its own head.

## Training data
Generated demo volumes (game/synthetic.py) through the game's pipeline: boundary map (the boundary
network models/boundary_unet.pt, or the classical filter game/filters.py) -> watershed supervoxels
-> RAG -> mean agglomeration ({segmentations}); labels from the exact ground truth
(game/puzzles/edit.py `PuzzleEdit.is_correct`). Trained {card['date']} with
`bench/train_default_detector.py` in {card['seconds']:.0f} s on this CPU ({card['epochs']} epochs).

{data}

## Validation (demo seed {card['validation_seed']}, threshold {GAME_THRESHOLD}: chose the epoch, never trained on)
| boundary | kind | candidates | correct | baseline AUC | detector AUC | baseline P@20 | detector P@20 |
| --- | --- | --- | --- | --- | --- | --- | --- |
{rows}

## Use in the game
Since the edit score (models/edit_score.json, game/detection/score.py), this CNN is no longer the
detector's score: where a volume has an image it scores contact merges only, as an input of the
stack sigmoid(c + a logit(edit score) + b logit(cnn)), which a volume uses only when its own known
answers rank it clearly better. Its split head and the split scalars (ncut, attachment, min-cut)
belong to split proposals the game no longer makes: it is not used for tree splits or gap merges.
Held-out figures beside the edit score: `bench/bench_detector.py` (the "CNN" column).

## Held-out figures
`bench/bench_detector.py` (the "CNN" column, contact merges).

## Limits
Trained on the two boundary maps the game makes; an imported probability map from another
classifier (e.g. gala's) is scored with some shift: retrain (players' answers retrain the edit score,
`retrain-detector`, not this network). Real EM differs from the demo in texture and object
shapes; see the bench for the figures on real data. Retrain when the boundary network changes.
"""


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "models" / "detector.pt"))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="tiny volumes and 1 epoch, to check the script")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    started = time.perf_counter()
    shape, epochs = ((16, 128, 128), 1) if args.quick else (SHAPE, args.epochs)
    parts, trained_on = [], []
    for seed in TRAIN_SEEDS:
        cases = {source: demo_case(seed, shape, source) for source in {s for s, _ in SEGMENTATIONS}}
        for source, threshold in SEGMENTATIONS:
            case = cases[source]
            _, examples, _ = case_examples(case, threshold)
            parts.append(examples)
            trained_on.append({"volume": f"{case.name} threshold {threshold}", "labels": len(examples),
                               "source": "ground truth", "date": date.today().isoformat()})
        print(f"seed {seed}: {sum(p.labels.size for p in parts)} examples so far, "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    # both boundary maps, so that the epoch is chosen on enough errors of both kinds
    held = {source: case_examples(demo_case(VALIDATION_SEED, shape, source), GAME_THRESHOLD)[1:]
            for source in ("network", "filter")}
    validation = Examples.concatenate([examples for examples, _ in held.values()])
    train = Examples.concatenate(parts)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model, history = train_detector(
        train, validation=validation, epochs=epochs, checkpoint=out,
        progress=lambda e, n, r: print(f"epoch {e}/{n} {json.dumps(r)} {time.perf_counter() - started:.0f} s",
                                       file=sys.stderr, flush=True))
    figures = {source: {"baseline": evaluate_ranking(candidates),
                        "detector": evaluate_ranking(with_scores(candidates, predict(model, examples)))}
               for source, (examples, candidates) in held.items()}
    model.card = {"name": "ProofQuest error detector", "date": date.today().isoformat(),
                  "trained_on": trained_on, "segmentations": [list(s) for s in SEGMENTATIONS],
                  "epochs": epochs, "history": history, "validation_seed": VALIDATION_SEED,
                  "validation": figures, "seconds": round(time.perf_counter() - started, 1),
                  "parameters": sum(p.numel() for p in model.parameters())}
    save_detector(model, out)
    if not args.quick:
        out.with_suffix(".md").write_text(model_card_markdown(model.card))
    result = {"examples": len(train), "validation": figures, "seconds": model.card["seconds"], "model": str(out)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
