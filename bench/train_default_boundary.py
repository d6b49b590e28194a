"""Train the default boundary network (models/boundary_unet.pt) and write its model card.

Training data: generated demo volumes (game.volumes.synthetic) of seeds 1, 2, 3, each
64×256×256, with sections z >= 48 held out for the validation loss. Test
data: the whole of seeds 0 (the volume the demo ships) and 4, never seen in
training. On the test volumes the network's boundary map is compared with the
classical filter game.segmentation.filters.membrane_probability in two ways:

- voxel-wise boundary average precision and best F1 against
  game.segmentation.boundary.boundary_targets(groundtruth);
- the segmentation the game builds from each map (watershed supervoxels,
  region adjacency graph, mean-boundary agglomeration at a few thresholds),
  scored by adapted Rand error against the ground truth.

The run is deterministic for the seed on a given machine and thread count; a
fresh checkpoint folder trains from scratch, an existing one resumes.

Run: .venv/bin/python bench/train_default_boundary.py   (15 epochs, about a minute
each on 2 CPU cores, seconds on a GPU; last line: JSON of the figures).
--quick trains one short epoch, for a smoke test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from game.evaluation.metrics import adapted_rand_error
from game.segmentation.boundary import (
    BEST_MODEL,
    TrainingSettings,
    boundary_scores,
    boundary_targets,
    predict_boundary,
    train_boundary,
)
from game.segmentation.filters import membrane_probability
from game.segmentation.merging import agglomerate
from game.segmentation.rag import build_rag
from game.segmentation.unet import load_model, save_model
from game.segmentation.watershed import watershed_supervoxels
from game.volumes.synthetic import DemoSpec, generate

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SEEDS = (1, 2, 3)
TEST_SEEDS = (0, 4)
SHAPE = (64, 256, 256)
VAL_SLAB = 48
AGGLOMERATION_THRESHOLDS = (0.3, 0.5, 0.7)
SETTINGS = TrainingSettings(steps_per_epoch=20, batch_size=4, crop=(16, 96, 96), learning_rate=2e-3,
                            validation_crops=8, base_channels=8, levels=2)


def segmentation_errors(boundary: np.ndarray, groundtruth: np.ndarray, spec: DemoSpec) -> dict[str, float]:
    """Adapted Rand error of the game's watershed + agglomeration on ``boundary``, per threshold."""
    relative = tuple(r / min(spec.resolution) for r in spec.resolution)
    supervoxels = watershed_supervoxels(boundary, sampling=relative)
    rag = build_rag(supervoxels, boundary)
    errors = {"supervoxels": float(adapted_rand_error(groundtruth, supervoxels)[0])}
    for threshold in AGGLOMERATION_THRESHOLDS:
        mapping = agglomerate(rag, threshold)
        errors[f"agglomerated@{threshold}"] = float(adapted_rand_error(groundtruth, mapping[supervoxels])[0])
    return errors


def evaluate(model, seed: int) -> dict:
    """Both boundary maps of one unseen demo volume, scored voxel-wise and as segmentations."""
    spec = DemoSpec(shape=SHAPE, seed=seed)
    image, groundtruth = generate(spec)
    targets = boundary_targets(groundtruth)
    started = time.perf_counter()
    network = predict_boundary(image, None, model, device="cpu")
    seconds = time.perf_counter() - started
    classical = np.rint(membrane_probability(image) * 255).astype(np.uint8)
    return {"seed": seed, "shape": list(SHAPE), "prediction_seconds_cpu": round(seconds, 2),
            "network": {**boundary_scores(network, targets), **segmentation_errors(network, groundtruth, spec)},
            "classical": {**boundary_scores(classical, targets), **segmentation_errors(classical, groundtruth, spec)}}


def model_card_markdown(card: dict) -> str:
    history = card["history"]
    best = min(history, key=lambda r: r["val_loss"])
    metrics = [("boundary average precision", "average_precision"), ("best boundary F1", "best_f1"),
               ("adapted Rand error, supervoxels", "supervoxels")]
    metrics += [(f"adapted Rand error, agglomerated at {t}", f"agglomerated@{t}") for t in AGGLOMERATION_THRESHOLDS]
    header = " | ".join(f"seed {t['seed']}: network | seed {t['seed']}: classical" for t in card["test"])
    rows = "\n".join(f"| {label} | " + " | ".join(f"{t['network'][key]:.3f} | {t['classical'][key]:.3f}"
                                                  for t in card["test"]) + " |" for label, key in metrics)
    curve = "\n".join(f"| {r['epoch']} | {r['train_loss']:.4f} | {r['val_loss']:.4f} |" for r in history)
    s = card["settings"]
    return f"""# Boundary network (models/boundary_unet.pt)

Predicts, for every voxel of an EM image, the probability that it lies on a
cell boundary (membrane); the game's watershed and agglomeration work on this
map. Made by `bench/train_default_boundary.py` on {card['date']}; rerun that
command to reproduce it (training takes about a minute per epoch on 2 CPU
cores, under a second per epoch on a GPU; the script prefers CUDA when there
is one; figures vary a little with the machine and thread count).

## Architecture
`game.segmentation.unet.BoundaryUNet(base_channels={card['arch']['base_channels']}, levels={card['arch']['levels']})`:
an anisotropic 3D U-Net (Ronneberger 2015, Çiçek 2016; anisotropic design
after Lee 2017) with {card['arch']['levels']} in-plane (1, 2, 2) poolings,
units of a (1, 3, 3) and a (3, 1, 1) convolution with batch normalisation and
ReLU, {card['arch']['base_channels']} to {card['arch']['base_channels'] * 2 ** card['arch']['levels']} channels,
summed skip connections, one sigmoid output. {card['parameters']:,} parameters.
Context radius (z, y, x) {tuple(card['context_radius'])} voxels. Input: uint8 intensity / 255.

## Training data
Generated demo volumes (`game.volumes.synthetic.generate(DemoSpec(shape={tuple(SHAPE)}, seed=s))`)
for seeds {', '.join(map(str, card['train_seeds']))}; sections z >= {card['val_slab']}
of each held out for the validation loss. Targets: `boundary_targets` (label 0,
the two-voxel membrane band, plus voxels of different labels touching in-plane).
Training seed {card['seed']}; {len(history)} epochs × {s['steps_per_epoch']} steps × batch {s['batch_size']}
crops of {tuple(s['crop'])} voxels, augmented (flips, in-plane 90° rotations,
contrast/brightness/gamma jitter, noise); class-balanced BCE; Adam, learning rate {s['learning_rate']}.
Kept: epoch {best['epoch']} (lowest validation loss {best['val_loss']:.4f}). Training took
{card['training_minutes']:.1f} min on {card['device']} ({card['threads']} threads).

## Test figures
Seeds {' and '.join(str(t['seed']) for t in card['test'])}, whole {'×'.join(map(str, SHAPE))} volumes,
never seen in training. "classical" is `game.segmentation.filters.membrane_probability`, the
training-free filter. Voxel-wise scores are against `boundary_targets`;
segmentations are `game.segmentation.watershed.watershed_supervoxels` + `build_rag` +
`agglomerate(threshold)`, scored by `game.evaluation.metrics.adapted_rand_error` (lower
is better; label 0 ignored).

| figure | {header} |
| --- |{' --- |' * (2 * len(card['test']))}
{rows}

## Limits
Trained only on the generated demo tissue: on real EM it is a starting point
that needs fine-tuning (`run.py train-boundary NAME` on a volume with ground
truth). Boundary probabilities near block faces differ from a single-pass
prediction by at most a few levels with the default overlap (4, 16, 16).

## Loss per epoch
| epoch | training loss | validation loss |
| --- | --- | --- |
{curve}
"""


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "bench" / "out" / "boundary_unet")
    parser.add_argument("--output", type=Path, default=ROOT / "models" / "boundary_unet.pt")
    parser.add_argument("--quick", action="store_true", help="one short epoch on small volumes (smoke test)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings, epochs = SETTINGS, args.epochs
    if args.quick:
        settings = TrainingSettings(**{**SETTINGS.__dict__, "steps_per_epoch": 2, "batch_size": 2})
        epochs = 1

    images, groundtruths = zip(*(generate(DemoSpec(shape=SHAPE, seed=seed)) for seed in TRAIN_SEEDS))
    started = time.perf_counter()
    history = train_boundary(list(images), list(groundtruths), epochs=epochs, val_slab=VAL_SLAB,
                             checkpoint_dir=args.checkpoints, seed=args.seed, settings=settings)
    training_minutes = (time.perf_counter() - started) / 60
    model = load_model(args.checkpoints / BEST_MODEL)
    card = {"date": date.today().isoformat(), "arch": model.arch, "context_radius": list(model.context_radius),
            "parameters": sum(p.numel() for p in model.parameters()), "train_seeds": list(TRAIN_SEEDS),
            "shape": list(SHAPE), "val_slab": VAL_SLAB, "seed": args.seed, "settings": settings.as_dict(),
            "history": history, "training_minutes": round(training_minutes, 2), "threads": args.threads,
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU",
            "test": [evaluate(model, seed) for seed in TEST_SEEDS]}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, args.output, card=card)
    args.output.with_suffix(".md").write_text(model_card_markdown(card))
    summary = {"model": str(args.output), "epochs": len(history), "training_minutes": card["training_minutes"],
               "best_val_loss": min(r["val_loss"] for r in history),
               **{f"seed{t['seed']}_{who}_{key}": round(t[who][key], 4) for t in card["test"]
                  for who in ("network", "classical") for key in ("average_precision", "best_f1", "agglomerated@0.5")}}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
