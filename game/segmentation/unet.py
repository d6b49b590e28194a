"""A small anisotropic 3D U-Net that predicts where the cell boundaries are.

Serial-section and FIB-SEM volumes are sampled more coarsely in z than in y
and x, so the network pools only in-plane, (1, 2, 2), and each of its
convolution units is a (1, 3, 3) in-plane convolution followed by a
(3, 1, 1) one across sections: in-plane context grows with depth while z
context stays a few sections wide, as in the anisotropic U-Net of Lee et al.
(2017), whose summed (rather than concatenated) skip connections it also
borrows. One output channel gives the logit of "this voxel is boundary"
(Turaga et al. 2010 learn affinities; a boundary map is their one-channel,
direction-free special case that a watershed consumes directly).

The model is stored as a small dict ``{'arch', 'state_dict', 'card'}`` that
:func:`torch.load` reads with ``weights_only=True``.

References
----------
Ronneberger, O., Fischer, P., Brox, T. (2015). U-Net: Convolutional networks
for biomedical image segmentation. MICCAI.
Çiçek, Ö. et al. (2016). 3D U-Net: learning dense volumetric segmentation
from sparse annotation. MICCAI.
Turaga, S. C. et al. (2010). Convolutional networks can learn to generate
affinity graphs for image segmentation. Neural Computation 22(2).
Lee, K., Zung, J., Li, P., Jain, V., Seung, H. S. (2017). Superhuman accuracy
on the SNEMI3D connectomics challenge. arXiv:1706.00120.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from game.errors import ProofQuestError

IN_PLANE_POOL = (1, 2, 2)


class InPlaneConv(nn.Conv3d):
    """A (1, k, k) convolution computed as one 2D convolution over all sections.

    The weights and the result are those of :class:`torch.nn.Conv3d`; folding
    z into the batch reaches oneDNN's 2D kernels, which on CPUs run the
    single-channel input layer about 9× faster than the 3D fallback does and
    make the whole network 20–40 % faster; on channels-last tensors the
    reshapes are views, not copies.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, depth, height, width = x.shape
        sections = x.transpose(1, 2).reshape(batch * depth, channels, height, width)
        out = F.conv2d(sections, self.weight[:, :, 0], self.bias, padding=self.padding[1:])
        return out.reshape(batch, depth, *out.shape[1:]).transpose(1, 2)


class ConvNormReLU(nn.Module):
    """Convolution ('same' padding), batch normalisation and ReLU.

    Batch normalisation rather than group normalisation: in evaluation mode it
    is a fixed affine map per channel, so a voxel's prediction does not depend
    on which block it was predicted in, and it folds into the convolution
    (:func:`fold_batchnorm`).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int]):
        super().__init__()
        convolution = InPlaneConv if kernel[0] == 1 else nn.Conv3d
        self.conv = convolution(in_channels, out_channels, kernel, padding=tuple(k // 2 for k in kernel), bias=False)
        self.norm = nn.BatchNorm3d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)), inplace=True)


def _unit(in_channels: int, out_channels: int) -> nn.Sequential:
    """A 3×3×3 convolution factorised into an in-plane (1, 3, 3) and a (3, 1, 1) across sections.

    The pair reaches as far as a 3×3×3 kernel (one section up and down, one
    voxel in-plane) for under half the multiply-adds, and a training step on
    CPUs takes about half as long as with a 3×3×3 second convolution, which
    is what makes training without a GPU practical.
    """
    return nn.Sequential(ConvNormReLU(in_channels, out_channels, (1, 3, 3)),
                         ConvNormReLU(out_channels, out_channels, (3, 1, 1)))


class BoundaryUNet(nn.Module):
    """Anisotropic 3D U-Net: EM intensities in, boundary logits out.

    Parameters
    ----------
    base_channels : feature maps at full resolution; each level below
        doubles them.
    levels : how many (1, 2, 2) poolings; y and x are padded internally to a
        multiple of ``2 ** levels`` and the output cropped back, so any input
        shape works.
    in_channels : input channels (1 for grey-scale EM).

    The input is intensity scaled to 0..1 (:func:`game.segmentation.boundary.image_to_input`),
    shaped (batch, in_channels, z, y, x); the output is (batch, 1, z, y, x)
    logits, a sigmoid away from boundary probability.
    """

    def __init__(self, base_channels: int = 8, levels: int = 2, in_channels: int = 1):
        super().__init__()
        if levels < 0 or base_channels < 1 or in_channels < 1:
            raise ProofQuestError(f"a U-Net needs levels >= 0 and positive channels, got "
                                  f"levels={levels}, base_channels={base_channels}, in_channels={in_channels}")
        self.card: dict = {}
        self.arch = {"base_channels": int(base_channels), "levels": int(levels), "in_channels": int(in_channels)}
        widths = [base_channels * 2**level for level in range(levels + 1)]
        self.encoders = nn.ModuleList([_unit(in_channels, widths[0])]
                                      + [_unit(a, b) for a, b in zip(widths, widths[1:])])
        self.upsamplers = nn.ModuleList([nn.ConvTranspose3d(b, a, IN_PLANE_POOL, stride=IN_PLANE_POOL)
                                         for a, b in zip(widths, widths[1:])])
        self.decoders = nn.ModuleList([_unit(a, a) for a in widths[:-1]])
        self.head = nn.Conv3d(widths[0], 1, 1)

    @property
    def divisor(self) -> int:
        """In-plane sizes are padded to a multiple of this (the total pooling)."""
        return 2 ** self.arch["levels"]

    @property
    def context_radius(self) -> tuple[int, int, int]:
        """How far (z, y, x voxels) from an output voxel the inputs that affect it can lie.

        Each unit on the deepest path adds one section in z; in-plane, a
        unit at level ``l`` adds ``2 ** l`` voxels and a pooling into level
        ``l`` up to ``2 ** (l - 1)`` for its window's alignment. Blocks
        overlapping by this much predict seamlessly.
        """
        levels = self.arch["levels"]
        encoder = sum(2**level for level in range(levels + 1))
        decoder = sum(2**level for level in range(levels))
        pooling = sum(2 ** (level - 1) for level in range(1, levels + 1))
        return (2 * levels + 1, encoder + decoder + pooling, encoder + decoder + pooling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_y, pad_x = -height % self.divisor, -width % self.divisor
        if pad_y or pad_x:
            x = F.pad(x, (0, pad_x, 0, pad_y, 0, 0), mode="replicate")
        skips = []
        for level, encoder in enumerate(self.encoders):
            if level:
                x = F.max_pool3d(x, IN_PLANE_POOL)
            x = encoder(x)
            skips.append(x)
        for upsample, decoder, skip in zip(reversed(self.upsamplers), reversed(self.decoders), reversed(skips[:-1])):
            x = decoder(upsample(x) + skip)
        return self.head(x)[..., :height, :width]


def fold_batchnorm(model: BoundaryUNet) -> BoundaryUNet:
    """An inference copy in which every batch normalisation is folded into its convolution.

    In evaluation mode a batch normalisation is ``scale * conv(x) + shift``
    per channel, so it can live in the convolution's weights and bias: the
    same outputs (to rounding) for one pass less over every feature map.
    """
    folded = copy.deepcopy(model).eval()
    for unit in folded.modules():
        if isinstance(unit, ConvNormReLU) and isinstance(unit.norm, nn.BatchNorm3d):
            norm, conv = unit.norm, unit.conv
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            fused = type(conv)(conv.in_channels, conv.out_channels, conv.kernel_size, padding=conv.padding, bias=True)
            with torch.no_grad():
                fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1, 1))
                fused.bias.copy_(norm.bias - norm.running_mean * scale)
            unit.conv, unit.norm = fused.to(conv.weight.device), nn.Identity()
    return folded


def save_model(model: BoundaryUNet, path: str | Path, card: dict | None = None) -> None:
    """Write ``{'arch', 'state_dict', 'card'}``; ``card`` holds plain data (str, numbers, lists, dicts)."""
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    torch.save({"arch": dict(model.arch), "state_dict": state, "card": dict(card or {})}, Path(path))


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> BoundaryUNet:
    """Rebuild a :class:`BoundaryUNet` saved by :func:`save_model`, in evaluation mode.

    The model card (training data, figures) is on the returned model as ``card``.
    """
    path = Path(path)
    if not path.is_file():
        raise ProofQuestError(f"no boundary model at {path}; train one (run.py train-boundary) or give another path")
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
        model = BoundaryUNet(**saved["arch"])
        model.load_state_dict(saved["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise ProofQuestError(f"{path} is not a boundary model saved by game.segmentation.unet.save_model "
                              f"({error})") from error
    model.card = saved.get("card", {})
    return model.to(device).eval()
