"""Throughput of blockwise boundary prediction, and how seamless it is.

Predicts the boundary map of the 64×256×256 demo volume (seed 0) with
game.segmentation.boundary.predict_boundary and the default model (models/boundary_unet.pt,
or an untrained network of the same architecture when it is absent): on the
CPU with --threads threads, and on CUDA when a GPU is present. Each figure is
the best of --repeats runs after one warm-up, in voxels of output per second.
Also reported: the network alone on one block with its overlap (the blockwise
overhead is the difference), and the largest and mean difference, in 0..255
levels, between the default blockwise prediction and a single pass over the
whole volume.

With --fibsem-epochs N (N > 0), the training recipe is also tried on real
EM: fibsem-gala from ../shared/data (50×100×200 FIB-SEM with ground truth),
trained on sections z < 35 for N epochs from scratch and, separately,
fine-tuned from the default model; boundary average precision on the held-out
z >= 35 is compared with the probability map that ships with the data
(train-p1), the classical filter and the default model as it is.

Run: .venv/bin/python bench/bench_boundary.py [--fibsem-epochs 6]   (last line: JSON of the figures)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from game.segmentation.boundary import (
    BEST_MODEL,
    TrainingSettings,
    boundary_scores,
    boundary_targets,
    image_to_input,
    predict_boundary,
    train_boundary,
)
from game.segmentation.filters import membrane_probability
from game.segmentation.unet import BoundaryUNet, fold_batchnorm, load_model
from game.volumes.synthetic import DemoSpec, generate

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (64, 256, 256)
BLOCK, OVERLAP = (32, 128, 128), (4, 16, 16)
FIBSEM = ROOT.parent / "shared" / "data" / "fibsem-gala"
FIBSEM_SPLIT = 35
FIBSEM_SETTINGS = TrainingSettings(steps_per_epoch=20, batch_size=4, crop=(16, 96, 96), learning_rate=1e-3)


def best_seconds(run, repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def network_alone(model: BoundaryUNet, image: np.ndarray, device: str, repeats: int) -> float:
    """Input voxels per second of the folded network on one block with its overlap."""
    region = tuple(b + 2 * o for b, o in zip(BLOCK, OVERLAP))
    x = torch.from_numpy(image_to_input(image[tuple(slice(0, r) for r in region)]))[None, None]
    x = x.to(device, memory_format=torch.channels_last_3d)
    network = fold_batchnorm(model).to(device).to(memory_format=torch.channels_last_3d)

    def run():
        with torch.inference_mode():
            network(x).cpu()
    return x.numel() / best_seconds(run, repeats)


def fibsem_figures(default_model: BoundaryUNet, epochs: int) -> dict:
    """Boundary average precision on fibsem-gala's held-out sections, for each way of getting a map."""
    import h5py

    def read(name):
        with h5py.File(FIBSEM / name) as f:
            return f["stack"][:]
    image, groundtruth, provided = read("train-image.h5"), read("train-gt.lzf.h5"), read("train-p1.lzf.h5")
    held_out = slice(FIBSEM_SPLIT, None)
    targets = boundary_targets(groundtruth)[held_out]
    maps = {"provided_p1": provided, "classical": membrane_probability(image),
            "default_model": predict_boundary(image, None, default_model)}
    figures = {"train_sections": f"z < {FIBSEM_SPLIT}", "epochs": epochs,
               "steps_per_epoch": FIBSEM_SETTINGS.steps_per_epoch}
    for name, initial in (("trained_from_scratch", None), ("fine_tuned_from_default", default_model)):
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            history = train_boundary(image, groundtruth, epochs=epochs, val_slab=FIBSEM_SPLIT, checkpoint_dir=folder,
                                     seed=0, settings=FIBSEM_SETTINGS, initial_model=initial)
            figures[f"{name}_minutes"] = round((time.perf_counter() - started) / 60, 2)
            figures[f"{name}_best_val_loss"] = round(min(r["val_loss"] for r in history), 4)
            maps[name] = predict_boundary(image, None, load_model(Path(folder) / BEST_MODEL))
    for name, boundary in maps.items():
        scores = boundary_scores(boundary[held_out], targets)
        figures[f"{name}_average_precision"] = round(scores["average_precision"], 4)
        figures[f"{name}_best_f1"] = round(scores["best_f1"], 4)
    return figures


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "boundary_unet.pt")
    parser.add_argument("--fibsem-epochs", type=int, default=0, help="also train on fibsem-gala (0: skip)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model(args.model) if args.model.is_file() else BoundaryUNet().eval()
    image, _ = generate(DemoSpec(shape=SHAPE, seed=0))

    figures = {"shape": list(SHAPE), "block": list(BLOCK), "overlap": list(OVERLAP), "threads": args.threads,
               "model": str(args.model) if args.model.is_file() else "untrained", "arch": model.arch}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        seconds = best_seconds(lambda: predict_boundary(image, None, model, block=BLOCK, overlap=OVERLAP,
                                                        device=device), args.repeats)
        figures[f"{device}_voxels_per_s"] = round(image.size / seconds)
        figures[f"{device}_network_alone_voxels_per_s"] = round(network_alone(model, image, device, args.repeats))
        print(f"{device}: {image.size / seconds / 1e6:.2f} M voxels/s blockwise, "
              f"{figures[f'{device}_network_alone_voxels_per_s'] / 1e6:.2f} M voxels/s for the network alone")
    if "cuda" in devices:
        figures["cuda_device"] = torch.cuda.get_device_name()

    blockwise = predict_boundary(image, None, model, block=BLOCK, overlap=OVERLAP, device="cpu").astype(int)
    single = predict_boundary(image, None, model, block=SHAPE, device="cpu").astype(int)
    difference = np.abs(blockwise - single)
    figures.update(seam_max_levels=int(difference.max()), seam_mean_levels=round(float(difference.mean()), 5),
                   seam_voxels_differing=round(float((difference > 0).mean()), 5))
    if args.fibsem_epochs > 0:
        if FIBSEM.is_dir():
            figures["fibsem"] = fibsem_figures(model, args.fibsem_epochs)
            print(f"fibsem-gala: {figures['fibsem']}")
        else:
            print(f"fibsem-gala skipped: no data at {FIBSEM}")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
