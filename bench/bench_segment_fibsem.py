"""Segmentation quality on real EM: `segment` beside the watershed alone (issue 3).

fibsem-gala from ../shared/data (50×100×200 FIB-SEM, 10 nm voxels, with
ground truth), split at z = 35: sections z < 35 are for training and for
choosing the agglomeration threshold, and every reported figure is measured on
the held-out slab z >= 35 alone (labels and ground truth cropped to it, then
game.evaluation.metrics.evaluate, ground-truth label 0 ignored). Everything runs through
the project's own steps (game.app.pipeline: import_volume, agglomerate_volume,
segment_volume; game.app.training.train_boundary_volume) in a temporary instance folder:

1. gala's watershed supervoxels (train-ws) alone, and agglomerated by the
   project on gala's boundary map (train-p1) at the default threshold;
2. `segment` with the shipped network (models/boundary_unet.pt);
3. `segment` with that network fine-tuned by `train-boundary` on the volume
   (--holdout 0.3: trained on z < 35; its best epoch is chosen by the
   validation loss on z >= 35);
4. for each, the agglomeration threshold chosen on the training slab z < 35
   (lowest adapted Rand error over --thresholds), the held-out slab reported
   at that threshold and at the default one.

Also reported: boundary average precision of each map on z >= 35. gala's own
learned agglomeration reached about 0.11 adapted Rand error on a neighbouring
volume: the figure to beat.

Run: .venv/bin/python bench/bench_segment_fibsem.py [--epochs 20]   (last line: JSON of the figures)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from game.app import pipeline, training
from game.app.instance import Instance
from game.app.settings import load_settings
from game.evaluation.metrics import evaluate
from game.segmentation.boundary import boundary_scores, boundary_targets

ROOT = Path(__file__).resolve().parents[1]
FIBSEM = ROOT.parent / "shared" / "data" / "fibsem-gala"
SPLIT_Z = 35  # train_boundary_volume's default --holdout 0.3 of 50 sections
RESOLUTION = (10.0, 10.0, 10.0)
TRAIN, HELD_OUT = slice(0, SPLIT_Z), slice(SPLIT_Z, None)
KEYS = ("adapted_rand_error", "vi_split", "vi_merge", "segments")
GALA_LEARNED_ARE = 0.11


def slab_figures(inst: Instance, name: str, z: slice) -> dict:
    """Metrics of the volume's current segmentation on sections ``z`` only."""
    volume = inst.volumes.open(name)
    labels = inst.agglomeration(name).mapping[volume.read("supervoxels")]
    scores = evaluate(volume.read("groundtruth")[z], labels[z])
    return {k: (round(float(scores[k]), 4) if k != "segments" else int(scores[k])) for k in KEYS}


def line(label: str, f: dict) -> str:
    return (f"{label}: adapted Rand error {f['adapted_rand_error']:.4f}  VI split {f['vi_split']:.3f}  "
            f"VI merge {f['vi_merge']:.3f}  segments {f['segments']}")


def threshold_choice(inst: Instance, name: str, thresholds: list[float], default: float) -> dict:
    """Choose the threshold on z < SPLIT_Z; the held-out slab at it and at the default."""
    on_train = {}
    for t in thresholds:
        pipeline.agglomerate_volume(inst, name, threshold=t)
        on_train[t] = slab_figures(inst, name, TRAIN)
        print(f"  {name} threshold {t}: z < {SPLIT_Z}: " + line("", on_train[t])[2:], flush=True)
    chosen = min(thresholds, key=lambda t: on_train[t]["adapted_rand_error"])
    result = {"train_slab": {str(t): f for t, f in on_train.items()}, "chosen_threshold": chosen}
    for label, t in (("chosen", chosen), ("default", default)):
        pipeline.agglomerate_volume(inst, name, threshold=t)
        result[f"held_out_at_{label}"] = slab_figures(inst, name, HELD_OUT)
        print(line(f"{name}, threshold {t} ({label}), z >= {SPLIT_Z}", result[f"held_out_at_{label}"]), flush=True)
    return result


def boundary_ap(inst: Instance, name: str, targets) -> float:
    return round(boundary_scores(inst.volumes.open(name).read("boundary")[HELD_OUT], targets)["average_precision"],
                 4)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20, help="train-boundary epochs for the fine-tuned network")
    parser.add_argument("--steps-per-epoch", type=int, default=20)
    parser.add_argument("--thresholds", default="0.3,0.4,0.5,0.6,0.7,0.8,0.85,0.9,0.95",
                        help="agglomeration thresholds tried on z < 35 (gala's train-p1 keeps improving up to 0.95)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--home", type=Path, help="instance folder to work in (default: a temporary one)")
    args = parser.parse_args(argv)
    if not FIBSEM.is_dir():
        print(f"fibsem-gala skipped: no data at {FIBSEM}")
        figures = {"skipped": f"no real data at {FIBSEM}"}
        print(json.dumps(figures))
        return figures
    torch.set_num_threads(args.threads)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pq-fibsem-") as scratch:
        home = args.home or Path(scratch) / "instance"
        inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
        default = float(inst.settings["AGGLOMERATION_THRESHOLD"])
        figures = {"volume": "fibsem-gala 50x100x200", "held_out": f"z >= {SPLIT_Z}", "threads": args.threads,
                   "default_threshold": default, "thresholds_tried": thresholds,
                   "gala_learned_agglomeration_are_neighbouring_volume": GALA_LEARNED_ARE}

        def source(file):
            return f"{FIBSEM / file}:stack"

        # 1. gala's watershed supervoxels on gala's boundary map
        pipeline.import_volume(inst, "ws", image=source("train-image.h5"), supervoxels=source("train-ws.lzf.h5"),
                               boundary=source("train-p1.lzf.h5"), groundtruth=source("train-gt.lzf.h5"),
                               resolution=RESOLUTION)
        ws = {"whole_volume_supervoxels": {k: round(float(v), 4) if isinstance(v, float) else v
                                           for k, v in pipeline.evaluate_volume(inst, "ws").items() if k in KEYS},
              "supervoxels": slab_figures(inst, "ws", HELD_OUT)}
        print(line("train-ws supervoxels, whole volume (sanity: the data's README says 0.250, 1.336 + 0.121)",
                   ws["whole_volume_supervoxels"]), flush=True)
        print(line(f"train-ws supervoxels alone, z >= {SPLIT_Z}", ws["supervoxels"]), flush=True)
        pipeline.agglomerate_volume(inst, "ws", threshold=default)
        ws["agglomerated_at_default"] = slab_figures(inst, "ws", HELD_OUT)
        print(line(f"train-ws agglomerated on train-p1 at {default}, z >= {SPLIT_Z}", ws["agglomerated_at_default"]),
              flush=True)
        ws.update(threshold_choice(inst, "ws", thresholds, default))
        figures["watershed_train_ws"] = ws

        # 2. segment with the shipped network
        for name in ("default", "finetuned"):
            pipeline.import_volume(inst, name, image=source("train-image.h5"), groundtruth=source("train-gt.lzf.h5"),
                                   resolution=RESOLUTION)
        at = time.perf_counter()
        info = pipeline.segment_volume(inst, "default", threshold=default)
        seg = {"segment_seconds": round(time.perf_counter() - at, 1), "supervoxels": info["supervoxels"]}
        seg["supervoxels_alone"] = _supervoxels_alone(inst, "default")
        print(line(f"segment (shipped network), its supervoxels alone, z >= {SPLIT_Z}", seg["supervoxels_alone"]),
              flush=True)
        seg.update(threshold_choice(inst, "default", thresholds, default))
        figures["segment_shipped_network"] = seg

        # 3. segment with the network fine-tuned by train-boundary on this volume
        out = Path(scratch) / "boundary_finetuned.pt"
        at = time.perf_counter()
        trained = training.train_boundary_volume(inst, "finetuned", epochs=args.epochs, out=str(out),
                                                 steps_per_epoch=args.steps_per_epoch,
                                                 progress=lambda text: print(f"  train-boundary: {text}", flush=True))
        tuned = {"epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch,
                 "train_minutes": round((time.perf_counter() - at) / 60, 2),
                 "best_val_loss": round(trained["best_val_loss"], 4)}
        print(f"train-boundary: {args.epochs} epochs in {tuned['train_minutes']} min, "
              f"best validation loss {tuned['best_val_loss']}", flush=True)
        at = time.perf_counter()
        info = pipeline.segment_volume(inst, "finetuned", model=str(out), threshold=default)
        tuned.update(segment_seconds=round(time.perf_counter() - at, 1), supervoxels=info["supervoxels"])
        tuned["supervoxels_alone"] = _supervoxels_alone(inst, "finetuned")
        print(line(f"segment (fine-tuned network), its supervoxels alone, z >= {SPLIT_Z}", tuned["supervoxels_alone"]),
              flush=True)
        tuned.update(threshold_choice(inst, "finetuned", thresholds, default))
        figures["segment_finetuned_network"] = tuned

        targets = boundary_targets(inst.volumes.open("ws").read("groundtruth"))[HELD_OUT]
        figures["boundary_average_precision_held_out"] = {
            "train_p1": boundary_ap(inst, "ws", targets), "shipped_network": boundary_ap(inst, "default", targets),
            "finetuned_network": boundary_ap(inst, "finetuned", targets)}
        print(f"boundary average precision, z >= {SPLIT_Z}: {figures['boundary_average_precision_held_out']}")
        inst.store.close()
    figures["minutes"] = round((time.perf_counter() - started) / 60, 2)
    print(f"wall time: {figures['minutes']} min")
    print(json.dumps(figures))
    return figures


def _supervoxels_alone(inst: Instance, name: str) -> dict:
    """The held-out slab with every supervoxel its own segment (threshold 0 merges nothing)."""
    pipeline.agglomerate_volume(inst, name, threshold=0.0)
    return slab_figures(inst, name, HELD_OUT)


if __name__ == "__main__":
    main()
