"""Fine-tuning the boundary network on what a lab has: ``train-boundary``.

A lab brings a volume with some annotation and wants the shipped network to
work on its tissue. What it has is one of: neuron ids in 3D, labels drawn per
section, or a membrane mask (binary or a probability), each declared at import
(:mod:`game.volumes.annotations`); all three make boundary targets (a change
of label in-plane, or the mask itself). What it can spare for validation
varies too: the last sections (a count or a share), nothing, or another
volume. And often only part of a volume is annotated: ``crop`` trains on that
box alone.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Callable

from game.app.instance import Instance
from game.errors import ProofQuestError
from game.geometry import BBox

# A training volume needs this many sections to train on and this many pixels in-plane.
MIN_SECTIONS = 2
MIN_PIXELS = 32
DEFAULT_HOLDOUT = "0.3"


def holdout_sections(holdout: str | float | None, depth: int) -> int:
    """How many of ``depth`` sections are held out for validation: ``'4'`` (sections), ``'0.3'`` (a share), ``'none'``.

    The held-out sections are the last ones; at least ``MIN_SECTIONS`` stay to train on.
    """
    text = "none" if holdout is None else str(holdout).strip().lower()
    if text in ("none", "0"):
        return 0
    try:
        value = float(text)
    except ValueError:
        raise ProofQuestError(f"--holdout {holdout!r}: give a number of sections (4), a share of them (0.3) "
                              "or none") from None
    if value.is_integer() and value >= 1:
        n = int(value)
    elif 0 < value < 1:
        n = max(1, round(depth * value))
    else:
        raise ProofQuestError(f"--holdout {holdout!r}: a share lies between 0 and 1, a count of sections is 1 or more")
    if depth - n < MIN_SECTIONS:
        raise ProofQuestError(f"--holdout {holdout} leaves {depth - n} of the {depth} sections to train on; "
                              f"at least {MIN_SECTIONS} are needed: hold out fewer (--holdout 2), none "
                              "(--holdout none), or validate on another volume (--validation NAME)")
    return n


def parse_crop(text: str | None, shape) -> BBox:
    """The box ``Z0:Z1,Y0:Y1,X0:X1`` of a volume of ``shape`` (an empty bound: the volume's end), checked."""
    if not text:
        return BBox.from_shape(shape)
    parts = text.split(",")
    if len(parts) != 3 or not all(re.fullmatch(r"\s*\d*\s*:\s*\d*\s*", p) for p in parts):
        raise ProofQuestError(f"--crop {text!r}: give Z0:Z1,Y0:Y1,X0:X1 in voxels (an empty bound is the volume's "
                              "end), e.g. 0:20,0:512,0:512")
    start, stop = [], []
    for part, size in zip(parts, shape):
        low, high = (p.strip() for p in part.split(":"))
        start.append(int(low) if low else 0)
        stop.append(min(int(high), size) if high else size)
    box = BBox(tuple(start), tuple(stop))
    if box.empty or any(s >= n for s, n in zip(start, shape)):
        raise ProofQuestError(f"--crop {text!r} holds no voxel of the volume of shape {tuple(shape)}")
    return box


def training_pair(volume, box: BBox) -> tuple:
    """The image and the annotation to train on inside ``box``, and the annotation's kind ('labels' or 'membranes')."""
    if volume.has("groundtruth"):
        layer, targets = "groundtruth", "labels"
    elif volume.has("membranes"):
        layer, targets = "membranes", "membranes"
    else:
        raise ProofQuestError(f"volume {volume.name!r} has no ground truth to train on: import it again with "
                              "--groundtruth (neuron ids in 3D, labels drawn per section, or a membrane mask, "
                              "binary or a probability)")
    if box.shape[1] < MIN_PIXELS or box.shape[2] < MIN_PIXELS:
        raise ProofQuestError(f"{box.shape[1]}×{box.shape[2]} pixels per section are too few to train on; "
                              f"at least {MIN_PIXELS}×{MIN_PIXELS} are needed")
    return volume.read("image", box), volume.read(layer, box), targets


def train_boundary_volume(inst: Instance, name: str, *, epochs: int, out: str, holdout=DEFAULT_HOLDOUT,
                          validation: str | None = None, crop: str | None = None, steps_per_epoch: int = 20,
                          from_scratch: bool = False, progress: Callable[[str], None] = print) -> dict:
    """Train the boundary network on a volume's annotation; resumable from its checkpoints.

    Parameters
    ----------
    holdout : str, int or float
        The last sections kept for validation: a count, a share, or 'none'
        (ignored with ``validation``). Default: the last 30%.
    validation : str, optional
        Another volume whose annotation (whole) validates instead.
    crop : str, optional
        ``Z0:Z1,Y0:Y1,X0:X1``: train (and hold out) inside this box only.
    """
    from game.app.settings import resolve_model_path
    from game.segmentation import boundary as bnd
    from game.segmentation.unet import load_model, save_model

    volume = inst.volumes.open(name)
    box = parse_crop(crop, volume.shape)
    image, truth, targets = training_pair(volume, box)
    held = 0 if validation else holdout_sections(holdout, box.shape[0])
    if box.shape[0] - held < MIN_SECTIONS:
        raise ProofQuestError(f"{box.shape[0]} sections are too few to train on; at least {MIN_SECTIONS} are needed")
    checked = None
    if validation:
        other = inst.volumes.open(validation)
        other_image, other_truth, other_targets = training_pair(other, BBox.from_shape(other.shape))
        if other_targets != targets:
            raise ProofQuestError(f"volume {name!r} has {targets} to train on but {validation!r} has "
                                  f"{other_targets}: validate on the same kind of annotation")
        checked = (other_image, other_truth)
    val_slab = box.shape[0] - held if held else None
    settings = bnd.TrainingSettings(steps_per_epoch=steps_per_epoch)
    # fine-tuning the shipped network beat training from scratch on real EM (models/boundary_unet.md)
    default = resolve_model_path(inst.settings["BOUNDARY_MODEL"])
    initial = None if from_scratch or not default.is_file() else load_model(default)
    trained_on = {"volume": name, "shape": list(volume.shape), "crop": [list(box.start), list(box.stop)],
                  "targets": targets, "truth": (volume.attrs.get("truth") or {}).get("kind"),
                  "held_out_sections": held, "validation": validation,
                  "val_slab_z": None if val_slab is None else box.start[0] + val_slab, "from_scratch": from_scratch}
    # a run resumes only the run it continues: same data, hold-out and start (train_boundary checks the settings)
    run = hashlib.sha1(json.dumps(trained_on, sort_keys=True).encode()).hexdigest()[:10]
    checkpoints = inst.home / "checkpoints" / f"boundary-{name}-{run}"
    history = bnd.train_boundary(image, truth, epochs=epochs, checkpoint_dir=checkpoints, val_slab=val_slab,
                                 progress=progress, settings=settings, initial_model=initial, targets=targets,
                                 validation=checked)
    best = load_model(checkpoints / bnd.BEST_MODEL)
    card = {**best.card, "trained_on": trained_on, "date": time.strftime("%Y-%m-%d")}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_model(best, out, card=card)
    return {"out": str(out), "epochs": len(history), "targets": targets, "held_out_sections": held,
            "validation": validation, "best_val_loss": min(
                (h["val_loss"] for h in history if h["val_loss"] is not None), default=None)}
