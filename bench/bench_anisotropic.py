"""Serial sections (issue 13): the anisotropic path against the 3D one, the boundary network shipped and
fine-tuned, puzzles that open on their decision, and the cost of preparing a 20×1024×1024 volume.

Everything runs through the project's own steps (game.app.pipeline, game.app.training, the pool) in
temporary instance folders; figures are printed as they come, the last line is their JSON.

1. ``paths``: adapted Rand error and VI (split + merge) of the initial segmentation with
   ``agglomerate --anisotropic off`` (3D watershed, mean boundary) and ``on`` (supervoxels section by section,
   contacts across sections linked by overlap), at the default threshold 0.5 and at each of THRESHOLDS (the
   best one is chosen with the truth: optimistic, shown for what the path can reach), beside the supervoxel
   limit (the best any merge or split of those supervoxels reaches). Volumes:
   - snemi-mini (SNEMI3D subset, 6×6×30 nm, 3D labels), its probability map (high inside cells, inverted) as
     the boundary;
   - snemi-mini with its annotators' membranes as the boundary (in-plane label borders, a binary 0/1 mask:
     exercises the scaling too) and its labels renumbered section by section as ground truth (declared 2D:
     every figure is the mean over the 32 sections): the issue's ssTEM case;
   - the demo (64×256×256 at 30×6×6 nm, seed 0).
2. ``net``: snemi-mini ships no raw image, so its probability map (bright cells, dark membranes, like EM)
   stands in for it: ``segment`` with the shipped network, then with the network fine-tuned by
   ``train-boundary --holdout 8`` (trained on z < 24); figures on the whole volume and on the held-out z >= 24.
3. ``slices``: the puzzles made on snemi-mini (each path) and on the demo (64×256×256, seed 0): the share
   that opens on the decision (the client opens on the stored frame's key slice, the frame shows the contact
   there, >= 24 px inside the image), the share framed across sections, and the smaller part's median size in
   voxels (merge puzzles).
4. ``big``: a synthetic 20×1024×1024 volume at 50×4.6×4.6 nm (the demo's generator at that resolution, its
   classical membrane filter as the boundary) imported, segmented (auto: anisotropic) and prepared (puzzles of
   the pool, with its ground truth) in a child process: seconds per step and peak resident memory, open and
   waiting puzzles; ``--big-variants '' POOL_OPEN=0,KNOWN_SAMPLE=0`` prepares it a second time with every
   candidate framed (as before the pool's cap), for a ratio from one run; ``--big-shape`` another size.

Run: .venv/bin/python bench/bench_anisotropic.py [--parts paths,net,slices,big] [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from game.app import pipeline, training  # noqa: E402
from game.app import store as st  # noqa: E402
from game.app.instance import Instance  # noqa: E402
from game.app.settings import SETTINGS_BY_NAME, load_settings  # noqa: E402
from game.crowd.assignment import puzzle_stack  # noqa: E402
from game.evaluation.metrics import evaluate  # noqa: E402
from game.puzzles.framing import MARGIN_PX, Frame  # noqa: E402
from game.segmentation.boundary import boundary_targets  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SNEMI = ROOT.parent / "shared" / "data" / "snemi-mini"
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
DEFAULT = 0.5
BIG_SHAPE, BIG_RESOLUTION = (20, 1024, 1024), (50.0, 4.6, 4.6)


def instance(home: Path, overrides: dict | None = None) -> Instance:
    return Instance(home, load_settings({"HOME": str(home), **(overrides or {})}, environ={}))


def rounded(value):
    return round(value, 4) if isinstance(value, float) else value


def scores(quality: dict) -> dict:
    return {"are": rounded(quality["adapted_rand_error"]), "vi": rounded(quality["vi_split"] + quality["vi_merge"]),
            "segments": quality["segments"]}


def compare_paths(inst: Instance, name: str) -> dict:
    """Each path at each threshold, and the supervoxel limit of each path's supervoxels."""
    out = {}
    for path in ("off", "on"):
        rows = {}
        for threshold in THRESHOLDS:
            info = pipeline.agglomerate_volume(inst, name, anisotropic=path, threshold=threshold)
            gap = pipeline.quality_gap(inst, name)
            rows[threshold] = scores(gap["initial"])
        best = min(rows, key=lambda t: rows[t]["are"])
        out["3d" if path == "off" else "anisotropic"] = {
            "supervoxels": info["supervoxels"], "default": rows[DEFAULT], "best": {"threshold": best, **rows[best]},
            "limit": scores(gap["limit"]), "per_section": gap["initial"]["per_section"]}
        print(f"  {name} {path:>3}: {info['supervoxels']} supervoxels; at {DEFAULT} ARE {rows[DEFAULT]['are']:.3f} "
              f"VI {rows[DEFAULT]['vi']:.3f}; best at {best}: ARE {rows[best]['are']:.3f} VI {rows[best]['vi']:.3f}; "
              f"limit ARE {gap['limit']['adapted_rand_error']:.3f}", flush=True)
    return out


def per_section_labels(labels: np.ndarray) -> np.ndarray:
    from skimage.measure import label
    return np.stack([label(section, connectivity=1) for section in labels]).astype(np.uint16)


def part_paths(scratch: Path) -> dict:
    figures = {}
    inst = instance(scratch / "paths")
    prob = SNEMI / "train-probabilities.tif"
    pipeline.import_volume(inst, "snemi", image=str(prob), boundary=str(prob), invert_boundary=True,
                           groundtruth=str(SNEMI / "train-labels.tif"), resolution=(30, 6, 6))
    figures["snemi_probability_map"] = compare_paths(inst, "snemi")
    labels = tifffile.imread(SNEMI / "train-labels.tif")
    tifffile.imwrite(scratch / "membranes.tif", boundary_targets(labels).astype(np.uint8))
    tifffile.imwrite(scratch / "labels2d.tif", per_section_labels(labels))
    info = pipeline.import_volume(inst, "snemi2d", image=str(prob), boundary=str(scratch / "membranes.tif"),
                                  groundtruth=str(scratch / "labels2d.tif"), resolution=(30, 6, 6))
    print(f"  snemi2d: truth read as {info['truth']['kind']}, boundary {info['scaling']['boundary']['note']}")
    figures["snemi_annotators_membranes_2d_truth"] = compare_paths(inst, "snemi2d")
    pipeline.make_demo(inst, "demo", shape=(64, 256, 256), seed=0)
    figures["demo"] = compare_paths(inst, "demo")
    inst.store.close()
    return figures


def held_out(inst: Instance, name: str, z0: int) -> dict:
    volume = inst.volumes.open(name)
    labels = inst.agglomeration(name).mapping[volume.read("supervoxels")]
    return scores(evaluate(volume.read("groundtruth")[z0:], labels[z0:]))


def part_net(scratch: Path, epochs: int, steps: int) -> dict:
    inst = instance(scratch / "net")
    prob = SNEMI / "train-probabilities.tif"
    pipeline.import_volume(inst, "snemi", image=str(prob), groundtruth=str(SNEMI / "train-labels.tif"),
                           resolution=(30, 6, 6))
    figures, z0 = {}, 24
    for label, model in (("shipped", None), ("fine_tuned", scratch / "snemi_boundary.pt")):
        if model is not None:
            started = time.perf_counter()
            trained = training.train_boundary_volume(inst, "snemi", epochs=epochs, out=str(model), holdout="8",
                                                     steps_per_epoch=steps, progress=lambda t: print("   ", t))
            figures["training"] = {"epochs": epochs, "steps_per_epoch": steps, "held_out_sections": 8,
                                   "minutes": round((time.perf_counter() - started) / 60, 2),
                                   "best_val_loss": rounded(trained["best_val_loss"])}
        for path in ("off", "on"):
            pipeline.segment_volume(inst, "snemi", model=None if model is None else str(model), anisotropic=path,
                                    discard_edits=True)
            whole = scores(pipeline.evaluate_volume(inst, "snemi"))
            held = held_out(inst, "snemi", z0)
            figures[f"{label}_{'3d' if path == 'off' else 'anisotropic'}"] = {"whole": whole, "z>=24": held}
            print(f"  segment, {label} network, {path:>3}: ARE {whole['are']:.3f} VI {whole['vi']:.3f}; "
                  f"held-out z >= {z0}: ARE {held['are']:.3f} VI {held['vi']:.3f}", flush=True)
    inst.store.close()
    return figures


def opens_on_decision(puzzle: dict) -> bool:
    frame = Frame.from_dict(puzzle["detector"]["frame"])
    slices, key = puzzle_stack(puzzle)
    return (slices, key) == (frame.slices, frame.key) and frame.contact_px > 0 and frame.margin_px >= MARGIN_PX


def slice_figures(inst: Instance, name: str, label: str) -> dict:
    """The share of ``name``'s puzzles (crowd and known answers) that open on their decision, and more."""
    puzzles = st.puzzles(inst.store, volume=name, tutorial=None)
    opening = sum(opens_on_decision(p) for p in puzzles)
    across = sum(Frame.from_dict(p["detector"]["frame"]).across > 0 for p in puzzles)
    smaller = [min(p["detector"]["features"]["size_a"], p["detector"]["features"]["size_b"])
               for p in puzzles if p["kind"] == "merge"]
    slices = sorted({Frame.from_dict(p["detector"]["frame"]).slices for p in puzzles})
    figures = {
        "puzzles": len(puzzles), "open_on_decision": opening,
        "open_on_decision_share": rounded(opening / len(puzzles)) if puzzles else None,
        "framed_across_sections": across, "gap_merges": sum(p["detector"].get("how") == "gap" for p in puzzles),
        "stack_sections": slices, "median_smaller_part_voxels": float(np.median(smaller)) if smaller else None}
    print(f"  {label}: {len(puzzles)} puzzles, {opening} open on their decision; {across} framed across "
          f"sections; stacks of {slices} sections; merge puzzles' smaller part median "
          f"{figures['median_smaller_part_voxels']} voxels", flush=True)
    return figures


def part_slices(scratch: Path) -> dict:
    figures = {}
    prob = SNEMI / "train-probabilities.tif"
    for path in ("off", "on"):
        inst = instance(scratch / f"slices-{path}")
        pipeline.import_volume(inst, "snemi", image=str(prob), boundary=str(prob), invert_boundary=True,
                               groundtruth=str(SNEMI / "train-labels.tif"), resolution=(30, 6, 6))
        pipeline.agglomerate_volume(inst, "snemi", anisotropic=path)
        inst.pool.prepare_volume("snemi")
        figures["3d" if path == "off" else "anisotropic"] = slice_figures(inst, "snemi", f"snemi puzzles, {path:>3}")
        inst.store.close()
    inst = instance(scratch / "slices-demo")
    pipeline.make_demo(inst, "demo", shape=(64, 256, 256), seed=0)
    inst.pool.prepare_volume("demo")
    figures["demo"] = slice_figures(inst, "demo", "demo (64x256x256, seed 0) puzzles")
    inst.store.close()
    return figures


def make_big(folder: Path, shape=BIG_SHAPE) -> float:
    """The synthetic 20×1024×1024 volume (or ``shape``) at 50×4.6×4.6 nm as .npy files (image, boundary, truth);
    seconds."""
    from game.geometry import BBox
    from game.segmentation.filters import membrane_probability
    from game.volumes import synthetic
    started = time.perf_counter()
    spec = synthetic.DemoSpec(shape=shape, resolution=BIG_RESOLUTION, seed=0)
    image = np.lib.format.open_memmap(folder / "image.npy", "w+", np.uint8, shape)
    truth = np.lib.format.open_memmap(folder / "truth.npy", "w+", np.uint32, shape)
    for box in BBox.from_shape(shape).tiles((shape[0], 256, 256)):
        image[box.slices], truth[box.slices] = synthetic.generate_block(spec, box)
    boundary = np.lib.format.open_memmap(folder / "boundary.npy", "w+", np.uint8, shape)
    for z in range(shape[0]):
        boundary[z] = np.round(membrane_probability(image[z:z + 1]) * 255).astype(np.uint8)[0]
    for array in (image, truth, boundary):
        array.flush()
    return time.perf_counter() - started


def child_prepare(home: str, folder: str, overrides: str = "") -> None:
    """Import, segment and prepare the big volume, timing each step; prints JSON with the peak memory.
    ``overrides``: settings as NAME=VALUE,NAME=VALUE."""
    pairs = (o.split("=", 1) for o in overrides.split(",") if o)
    inst = instance(Path(home), {name: SETTINGS_BY_NAME[name].parse(value) for name, value in pairs})
    steps = {}
    started = time.perf_counter()
    pipeline.import_volume(inst, "big", image=f"{folder}/image.npy", boundary=f"{folder}/boundary.npy",
                           groundtruth=f"{folder}/truth.npy", resolution=BIG_RESOLUTION)
    steps["import"] = time.perf_counter() - started
    started = time.perf_counter()
    info = pipeline.agglomerate_volume(inst, "big")
    steps["supervoxels_and_agglomeration"] = time.perf_counter() - started
    started = time.perf_counter()
    puzzles = inst.pool.prepare_volume("big")
    steps["puzzles"] = time.perf_counter() - started
    quality = pipeline.quality_gap(inst, "big")
    print(json.dumps({"seconds": {k: round(v, 1) for k, v in steps.items()},
                      "total_seconds": round(sum(steps.values()), 1), "supervoxels": info["supervoxels"],
                      "per_section": info["supervoxels_per_section"], "puzzles": puzzles,
                      "open": st.open_crowd_puzzles(inst.store, "big"), "waiting": inst.pool.waiting("big"),
                      "initial": scores(quality["initial"]), "limit": scores(quality["limit"]),
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def part_big(scratch: Path, shape=BIG_SHAPE, variants=("",)) -> dict:
    """Prepare the big volume once per variant (settings NAME=VALUE,...; "" the defaults), from one source."""
    folder = scratch / "big-source"
    folder.mkdir()
    generated = make_big(folder, shape)
    print(f"  generated {shape} at {BIG_RESOLUTION} nm in {generated:.0f} s", flush=True)
    out = {"shape": list(shape), "resolution": list(BIG_RESOLUTION), "generated_seconds": round(generated)}
    for i, variant in enumerate(variants):
        run = subprocess.run([sys.executable, __file__, "--child-prepare", str(scratch / f"big-home-{i}"),
                              str(folder), variant], capture_output=True, text=True, check=True)
        figures = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"  [{variant or 'defaults'}] prepared in {figures['total_seconds']} s ({figures['seconds']}), peak "
              f"{figures['peak_rss_mib']} MiB, {figures['supervoxels']} supervoxels, {figures['puzzles']} puzzles "
              f"({figures['open']} open, {figures['waiting']} waiting)", flush=True)
        out[variant or "defaults"] = figures
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="paths,net,slices,big")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps-per-epoch", type=int, default=20)
    parser.add_argument("--big-shape", default="20,1024,1024", help="shape of the big part's volume, Z,Y,X")
    parser.add_argument("--big-variants", nargs="+", default=[""], metavar="NAME=VALUE[,NAME=VALUE]",
                        help="prepare the big volume once per variant of the settings ('' the defaults), e.g. "
                             "'' POOL_OPEN=0,KNOWN_SAMPLE=0 (every candidate framed, as before the pool's cap)")
    parser.add_argument("--child-prepare", nargs="+", metavar="HOME FOLDER [SETTINGS]", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.child_prepare:
        child_prepare(*args.child_prepare)
        return
    if not SNEMI.exists() and set(args.parts.split(",")) != {"big"}:
        sys.exit(f"snemi-mini not found at {SNEMI}")
    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for part in args.parts.split(","):
            print(f"{part}:", flush=True)
            started = time.perf_counter()
            if part == "paths":
                figures[part] = part_paths(scratch)
            elif part == "net":
                figures[part] = part_net(scratch, args.epochs, args.steps_per_epoch)
            elif part == "slices":
                figures[part] = part_slices(scratch)
            elif part == "big":
                figures[part] = part_big(scratch, tuple(int(n) for n in args.big_shape.split(",")),
                                         args.big_variants)
            else:
                sys.exit(f"unknown part {part!r}")
            print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
