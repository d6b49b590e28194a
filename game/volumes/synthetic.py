"""The generated demo volume: EM-like images with exact ground truth.

Neurites are centerline curves defined once for the whole volume from the
seed. Most run through z (one point per slice, packed like axons in a
bundle); thin oblique processes and branches run at shallow angles through
the bundle, and some neurites carry mitochondria. A voxel belongs to the
axial neurite whose centerline is nearest in the slice by power distance
(distance² − radius², a Laguerre tessellation: cross-sections packed densely,
convex and sized like their neurites), looked up at smoothly warped positions
so that outlines are rounded and irregular; oblique tubes and branches claim
the voxels inside them. Membranes are drawn on the partition boundaries.

Every random quantity that the image needs at a voxel (noise, membrane gaps,
texture) is a hash of the voxel's global coordinates and the seed, and all
spatial filtering is done on a halo-padded block, so a block comes out the
same whatever blocking produced it: a 512×1024×1024 volume can be written
chunk by chunk without ever holding it whole.

Ground truth: neurite ids are positive and global (stable across blocks, not
dense); membrane voxels, a two-voxel band on every in-plane boundary between
neurites, are labelled 0, the SNEMI3D convention that metrics ignore.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from game.errors import ProofQuestError
from game.geometry import BBox

#: Largest volume that :func:`generate` returns as one array; bigger ones go
#: through :func:`iter_blocks`.
MAX_WHOLE_VOXELS = 2**27
# Blocks that :func:`generate` assembles the volume from: the default volume
# is one block, and a block's temporaries (about 100 bytes a voxel) stay small.
_WHOLE_CHUNKS = (64, 256, 256)

# Distances (nm) beyond which a membrane no longer darkens the image.
_MEMBRANE_REACH_NM = 24.0
# Largest axial radius, in median radii.
_MAX_RADIUS = 3.0
# Slope bound and longest in-plane wavelength (nm) of the bundle's bend.
_BEND_LIPSCHITZ = 0.3
_BEND_WAVELENGTH_NM = 5000.0
# Each axial neurite's own sideways wobble, in its radii.
_WOBBLE = 0.12
# Distance (nm) outside a tube or mitochondrion up to which it is looked up.
_TUBE_CUTOFF_NM = 16.0
# In-plane width, in voxels, of the grid cells that find the voxels near a tube.
_NEAR_CELL = 4
# Side, in voxels, of the tiles that share one short list of candidate centerlines.
_TILE = 8


@dataclass(frozen=True)
class DemoSpec:
    """What to generate: size, seed and the tissue's look.

    Parameters
    ----------
    shape : (z, y, x) voxels.
    seed : the volume is a pure function of the spec; another seed gives
        other tissue.
    resolution : (z, y, x) voxel size in nm; anisotropic like serial-section
        TEM or FIB-SEM with thick slices.
    radius_nm : median radius of the axial neurites.
    radius_spread : log-normal spread of the radii.
    oblique_per_um3 : thin processes crossing the bundle, per cubic micron.
    branch_fraction : fraction of axial neurites that send off a branch.
    ending_fraction : fraction of axial neurites that begin or end inside
        the volume.
    mitochondria_fraction : fraction of axial neurites holding a
        mitochondrion.
    vesicle_fraction : fraction of neurites filled with vesicle speckle.
    membrane_gaps : fraction of membrane area that shows no contrast at all
        (a further band is faint); the gaps are what tempt an automatic
        segmentation into false merges.
    noise : standard deviation of the imaging noise, in grey levels.
    blur_nm : in-plane Gaussian blur of the point-spread function.
    """

    shape: tuple[int, int, int] = (64, 256, 256)
    seed: int = 0
    resolution: tuple[float, float, float] = (30.0, 6.0, 6.0)
    radius_nm: float = 50.0
    radius_spread: float = 0.45
    oblique_per_um3: float = 3.0
    branch_fraction: float = 0.1
    ending_fraction: float = 0.15
    mitochondria_fraction: float = 0.35
    vesicle_fraction: float = 0.2
    membrane_gaps: float = 0.012
    noise: float = 18.0
    blur_nm: float = 6.0

    def __post_init__(self):
        shape = tuple(int(s) for s in self.shape)
        resolution = tuple(float(r) for r in self.resolution)
        if len(shape) != 3 or min(shape) < 1:
            raise ProofQuestError(f"demo shape must be three positive sizes (z, y, x), got {self.shape}")
        if len(resolution) != 3 or min(resolution) <= 0:
            raise ProofQuestError(f"demo resolution must be three positive voxel sizes in nm, got {self.resolution}")
        if self.radius_nm <= 2 * max(resolution[1:]):
            raise ProofQuestError(f"radius_nm={self.radius_nm} is under two voxels; raise it or refine the resolution")
        if int(self.seed) < 0:
            raise ProofQuestError(f"demo seed must be a non-negative integer, got {self.seed}")
        for name in ("branch_fraction", "ending_fraction", "mitochondria_fraction",
                     "vesicle_fraction", "membrane_gaps"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ProofQuestError(f"{name} must lie in 0..1, got {getattr(self, name)}")
        for name in ("radius_spread", "oblique_per_um3", "noise", "blur_nm"):
            if getattr(self, name) < 0:
                raise ProofQuestError(f"{name} must not be negative, got {getattr(self, name)}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "resolution", resolution)
        object.__setattr__(self, "seed", int(self.seed))


@dataclass(frozen=True, eq=False)
class _Tubes:
    """Sampled centerlines with a radius (nm) and the neurite id of each sample."""

    points: np.ndarray
    radius: np.ndarray
    ids: np.ndarray

    @classmethod
    def concatenate(cls, parts: list["_Tubes"]) -> "_Tubes":
        return cls(np.concatenate([p.points for p in parts]).reshape(-1, 3),
                   np.concatenate([p.radius for p in parts]),
                   np.concatenate([p.ids for p in parts]).astype(np.uint32))


@dataclass(frozen=True, eq=False)
class _Skeleton:
    """The tissue's geometry, shared by every block of one spec.

    ``axial_yx[i, z]`` is neurite ``i + 1``'s centre in slice ``z`` (nm) and
    ``axial_radius[i, z]`` its radius there, NaN where it does not exist.
    """

    axial_yx: np.ndarray
    axial_radius: np.ndarray
    tubes: _Tubes
    mitochondria: _Tubes
    reach_nm: float


# --------------------------------------------------------------------------
# Hashed randomness: pure functions of global coordinates and the seed.

_GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1


def _mix64(h: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijective scramble of uint64 values."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _key(seed: int, stream: int) -> np.uint64:
    return np.uint64((seed * _GOLDEN + stream * 0xD1B54A32D192ED03 + 1) & _MASK64)


def _hash_grid(box: BBox, seed: int, stream: int) -> np.ndarray:
    """A uint64 hash of every voxel's global (z, y, x) in ``box``."""
    axes = [np.arange(a, b, dtype=np.int64).view(np.uint64) for a, b in zip(box.start, box.stop)]
    h = _mix64(axes[0] + _key(seed, stream))
    h = _mix64(h[:, None] ^ (axes[1] * np.uint64(_GOLDEN))[None, :])
    return _mix64(h[:, :, None] ^ (axes[2] * np.uint64(0xC2B2AE3D27D4EB4F))[None, None, :])


def _hash_ids(ids: np.ndarray, seed: int, stream: int) -> np.ndarray:
    """A uniform number in [0, 1) for each neurite id."""
    h = _mix64(np.asarray(ids, dtype=np.uint64).reshape(-1) * np.uint64(_GOLDEN) + _key(seed, stream))
    return ((h >> np.uint64(11)).astype(np.float64) * 2.0**-53).reshape(np.shape(ids))


def _uniform(box: BBox, seed: int, stream: int) -> np.ndarray:
    """White noise, uniform in [0, 1), float32."""
    return ((_hash_grid(box, seed, stream) >> np.uint64(40)).astype(np.float32)) * np.float32(2.0**-24)


def _gaussian(box: BBox, seed: int, stream: int) -> np.ndarray:
    """White noise, approximately standard normal (Irwin–Hall sum of four 16-bit uniforms)."""
    h = _hash_grid(box, seed, stream)
    total = np.zeros(box.shape, np.float32)
    for shift in (0, 16, 32, 48):
        total += ((h >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.float32)
    return (total * np.float32(1 / 65536) - np.float32(2.0)) * np.float32(math.sqrt(3.0))


def _value_noise(box: BBox, cell: tuple[float, float, float], seed: int, stream: int) -> np.ndarray:
    """Smooth noise in about -1..1: hashed lattice values, smoothstep-interpolated.

    ``cell`` is the lattice spacing in voxels along (z, y, x), i.e. the
    feature size.
    """
    positions = [np.arange(a, b) / c for a, b, c in zip(box.start, box.stop, cell)]
    floors = [np.floor(p).astype(np.int64) for p in positions]
    lattice_box = BBox(tuple(int(f[0]) for f in floors), tuple(int(f[-1]) + 2 for f in floors))
    field = _uniform(lattice_box, seed, stream) * np.float32(2) - np.float32(1)
    for axis, (p, f) in enumerate(zip(positions, floors)):
        t = (p - f).astype(np.float32)
        w = t * t * (np.float32(3) - np.float32(2) * t)
        shape = [1, 1, 1]
        shape[axis] = -1
        w = w.reshape(shape)
        index = f - f[0]
        field = np.take(field, index, axis=axis) * (1 - w) + np.take(field, index + 1, axis=axis) * w
    return field


# --------------------------------------------------------------------------
# The skeleton: neurite centerlines for the whole volume.

def _pack_disks(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray,
                radius_nm: float, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres and radii of non-overlapping disks packed big-first into a rectangle.

    Random candidates are thinned to the greedy maximal independent set of
    their overlap graph, taken in order of (jittered) radius, computed in
    vectorised rounds.
    """
    r_min, r_max = 0.35 * radius_nm, _MAX_RADIUS * radius_nm
    mean_area = math.pi * radius_nm**2 * math.exp(2 * spread**2)
    count = int(8 * np.prod(hi - lo) / mean_area) + 1
    centres = rng.uniform(lo, hi, size=(count, 2))
    radii = np.clip(radius_nm * np.exp(spread * rng.standard_normal(count)), r_min, r_max)
    priority = radii * rng.uniform(0.7, 1.3, count)
    pairs = cKDTree(centres).query_pairs(2 * r_max, output_type="ndarray")
    a, b = pairs.T
    overlap = np.linalg.norm(centres[a] - centres[b], axis=1) < radii[a] + radii[b]
    a, b = a[overlap], b[overlap]
    state = np.zeros(count, np.int8)  # 0 undecided, 1 kept, -1 dropped
    while (state == 0).any():
        live = (state[a] == 0) & (state[b] == 0)
        rival = np.full(count, -np.inf)
        np.maximum.at(rival, a[live], priority[b[live]])
        np.maximum.at(rival, b[live], priority[a[live]])
        won = (state == 0) & (priority > rival)
        state[won] = 1
        beaten = np.zeros(count, bool)
        beaten[b[won[a]]] = True
        beaten[a[won[b]]] = True
        state[beaten & (state == 0)] = -1
    keep = state == 1
    return centres[keep], radii[keep]


def _plane_waves(rng: np.random.Generator, count: int, lipschitz: float) -> dict[str, np.ndarray]:
    """A smooth random scalar field of (y, x, z) in nm: a sum of ``count`` plane waves.

    Used as one component of the bundle's displacement. Amplitudes are set
    so that its in-plane Lipschitz constant stays below ``lipschitz`` < 1:
    displaced neighbours never swap places, so centerlines never cross.
    """
    wavelength_xy = rng.uniform(2000.0, _BEND_WAVELENGTH_NM, count)
    wavelength_z = rng.uniform(600.0, 2500.0, count)
    angle = rng.uniform(0, 2 * np.pi, count)
    k_xy = (2 * np.pi / wavelength_xy)[:, None] * np.stack([np.sin(angle), np.cos(angle)], axis=1)
    return {
        "k_xy": k_xy,
        "k_z": 2 * np.pi / wavelength_z * rng.choice([-1.0, 1.0], count),
        "amplitude": lipschitz / count / np.linalg.norm(k_xy, axis=1),
        "phase": rng.uniform(0, 2 * np.pi, count),
    }


def _displacement(waves: dict[str, np.ndarray], yx: np.ndarray, z_nm: np.ndarray) -> np.ndarray:
    """The field of :func:`_plane_waves` at centres ``yx`` (n, 2) and depths ``z_nm`` (Z,): (n, Z)."""
    total = np.zeros((len(yx), len(z_nm)))
    for k_xy, k_z, amplitude, phase in zip(waves["k_xy"], waves["k_z"], waves["amplitude"], waves["phase"]):
        total += amplitude * np.sin((yx @ k_xy)[:, None] + k_z * z_nm[None, :] + phase)
    return total


def _axial_paths(rng: np.random.Generator, spec: DemoSpec, lo: np.ndarray, hi: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Centres (n, Z, 2) and radii (n, Z) of the neurites that run through z.

    A shared smooth displacement bends the bundle; each neurite adds its own
    small wobble (well under the gap to its neighbours) and a swelling of its
    radius (varicosities); some begin or end inside the volume, tapering.
    """
    seeds, radii = _pack_disks(rng, lo, hi, spec.radius_nm, spec.radius_spread)
    n, depth = len(seeds), spec.shape[0]
    z_nm = np.arange(depth) * spec.resolution[0]
    shift = np.stack([_displacement(_plane_waves(rng, 5, _BEND_LIPSCHITZ), seeds, z_nm) for _ in range(2)], axis=-1)

    wobble_wavelength = rng.uniform(400.0, 1500.0, (n, 1))
    wobble_phase = rng.uniform(0, 2 * np.pi, (n, 1))
    wobble_angle = rng.uniform(0, 2 * np.pi, n)
    wobble = _WOBBLE * radii[:, None] * np.sin(2 * np.pi * z_nm / wobble_wavelength + wobble_phase)
    direction = np.stack([np.sin(wobble_angle), np.cos(wobble_angle)], axis=1)
    centres = seeds[:, None, :] + shift + wobble[:, :, None] * direction[:, None, :]

    swell = 1 + 0.2 * np.sin(2 * np.pi * z_nm / rng.uniform(500.0, 2000.0, (n, 1)) + rng.uniform(0, 2 * np.pi, (n, 1)))
    radius = radii[:, None] * swell
    ends = rng.random(n) < spec.ending_fraction
    end_z = rng.uniform(0, depth * spec.resolution[0], n)
    side = rng.choice([-1.0, 1.0], n)
    # signed distance (nm) into the neurite from its end, +inf for neurites without one
    inside = np.where(ends[:, None], side[:, None] * (z_nm[None, :] - end_z[:, None]), np.inf)
    taper = np.clip(inside / 150.0, 0, 1)
    radius = np.where(inside > 0, radius * np.sqrt(taper), np.nan)
    return centres, radius


def _sample_curve(start: np.ndarray, direction: np.ndarray, length: float, radius: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Points (nm) along a gently wavy curve, spaced a third of ``radius`` apart."""
    s = np.arange(0.0, length, radius / 3)
    helper = np.array([1.0, 0.0, 0.0]) if abs(direction[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    normal = np.cross(direction, helper)
    normal /= np.linalg.norm(normal)
    binormal = np.cross(direction, normal)
    phase = rng.uniform(0, 2 * np.pi, 2)
    bend = rng.uniform(0.05, 0.15) * length * np.sin(2 * np.pi * s / length * rng.uniform(0.5, 1.5) + phase[0])
    twist = 0.3 * bend * np.cos(2 * np.pi * s / length + phase[1])
    return start + s[:, None] * direction + bend[:, None] * normal + twist[:, None] * binormal


def _shallow_direction(rng: np.random.Generator, max_elevation_deg: float) -> np.ndarray:
    """A unit (z, y, x) vector at most ``max_elevation_deg`` out of the slice plane."""
    elevation = np.deg2rad(rng.uniform(0, max_elevation_deg)) * rng.choice([-1, 1])
    azimuth = rng.uniform(0, 2 * np.pi)
    return np.array([np.sin(elevation), np.cos(elevation) * np.sin(azimuth), np.cos(elevation) * np.cos(azimuth)])


def _crossing_tubes(rng: np.random.Generator, spec: DemoSpec, lo: np.ndarray, hi: np.ndarray,
                    centres: np.ndarray, radius: np.ndarray) -> _Tubes:
    """Oblique neurites (fresh ids after the axial ones) and branches (their parent's id).

    Tubes are thinner than most axial neurites, so crossing one dents a
    neurite's cross-section for a slice or two without cutting it in two.
    """
    depth_nm = spec.shape[0] * spec.resolution[0]
    volume_um3 = np.prod(hi - lo) * depth_nm * 1e-9
    parts = []
    n_axial = len(centres)
    for k in range(rng.poisson(spec.oblique_per_um3 * volume_um3)):
        start = np.concatenate([[rng.uniform(0, depth_nm)], rng.uniform(lo, hi)])
        r = rng.uniform(0.3, 0.5) * spec.radius_nm
        points = _sample_curve(start, _shallow_direction(rng, 40), rng.uniform(800, 3000), r, rng)
        parts.append(_Tubes(points, np.full(len(points), r), np.full(len(points), n_axial + 1 + k)))
    for parent in np.flatnonzero(rng.random(n_axial) < spec.branch_fraction):
        alive = np.flatnonzero(np.isfinite(radius[parent]))
        if not len(alive):
            continue
        z = rng.choice(alive)
        start = np.concatenate([[z * spec.resolution[0]], centres[parent, z]])
        r = float(np.clip(0.4 * radius[parent, z], 0.3 * spec.radius_nm, 0.5 * spec.radius_nm))
        points = _sample_curve(start, _shallow_direction(rng, 50), rng.uniform(400, 1200), r, rng)
        parts.append(_Tubes(points, np.full(len(points), r), np.full(len(points), parent + 1)))
    return _Tubes.concatenate(parts or [_Tubes(np.empty((0, 3)), np.empty(0), np.empty(0))])


def _mitochondria(rng: np.random.Generator, spec: DemoSpec, centres: np.ndarray, radius: np.ndarray) -> _Tubes:
    """Mitochondria: capsules running along their axial neurite, off its centre.

    Each is sampled once per slice and follows its parent's path, so it stays
    inside; the radius tapers to round the ends.
    """
    depth, rz = spec.shape[0], spec.resolution[0]
    parents = np.flatnonzero(rng.random(len(centres)) < spec.mitochondria_fraction)
    count = len(parents)
    half = rng.uniform(200.0, 700.0, count) / rz
    middle = rng.integers(0, depth, count)
    scale = rng.uniform(0.5, 0.7, count)
    offset = rng.uniform(0.0, 1.0, count) * (0.9 - scale)
    angle = rng.uniform(0, 2 * np.pi, count)
    base = radius[parents, middle]
    t = (np.arange(depth)[None, :] - middle[:, None]) / half[:, None]
    r = (scale * base)[:, None] * np.sqrt(np.clip(1 - t**2, 0, None))
    direction = np.stack([np.sin(angle), np.cos(angle)], axis=1)
    yx = centres[parents] + (offset * base)[:, None, None] * direction[:, None, :]
    exists = np.isfinite(base)[:, None] & np.isfinite(radius[parents])
    which, zs = np.nonzero(exists & (np.nan_to_num(r) > 2 * spec.resolution[1]))
    points = np.column_stack([zs * rz, yx[which, zs]])
    return _Tubes(points, r[which, zs], (parents[which] + 1).astype(np.uint32))


@functools.lru_cache(maxsize=4)
def _skeleton(spec: DemoSpec) -> _Skeleton:
    """All centerlines of the volume, drawn from ``spec.seed``.

    The packing covers the volume's extent plus a margin wide enough that
    every voxel's nearest centerline by power distance lies inside it.
    """
    rng = np.random.default_rng(spec.seed)
    reach = 4 * _MAX_RADIUS * spec.radius_nm
    # the packing also covers how far the bundle's bend and wobble can move a centre
    bend = _BEND_LIPSCHITZ * _BEND_WAVELENGTH_NM / (2 * np.pi)
    pad = reach + bend + _WOBBLE * _MAX_RADIUS * spec.radius_nm
    extent = np.array(spec.shape[1:]) * np.array(spec.resolution[1:])
    lo, hi = -np.full(2, pad), extent + pad
    centres, radius = _axial_paths(rng, spec, lo, hi)
    tubes = _crossing_tubes(rng, spec, lo, hi, centres, radius)
    mitochondria = _mitochondria(rng, spec, centres, radius)
    return _Skeleton(centres, radius, tubes, mitochondria, reach)


def neurite_count(spec: DemoSpec) -> int:
    """How many neurites the volume's generator defines (some only brush its edge)."""
    skeleton = _skeleton(spec)
    axial = np.isfinite(skeleton.axial_radius).any(axis=1).sum()
    oblique = np.unique(skeleton.tubes.ids[skeleton.tubes.ids > len(skeleton.axial_yx)]).size
    return int(axial + oblique)


# --------------------------------------------------------------------------
# Labels of a block.

# (amplitude, feature size) in median radii and the noise streams of the warp's
# octaves; amplitude × 3 / size bounds each octave's slope.
_WARP_OCTAVES = ((0.45, 3.0, 12), (0.2, 1.2, 14))


def _warp_amplitude(spec: DemoSpec) -> float:
    return sum(a for a, _, _ in _WARP_OCTAVES) * spec.radius_nm


def _warped_positions(spec: DemoSpec, box: BBox) -> np.ndarray:
    """In-plane (y, x) position in nm of every voxel after a smooth warp: shape (*box.shape, 2).

    Looking the partition up at warped positions bends its straight edges
    into the rounded, irregular outlines of real neurites. The warp's
    derivatives stay under 1, so it barely ever folds and neurites keep
    their connectivity.
    """
    r, res = spec.radius_nm, spec.resolution
    warp = np.zeros((*box.shape, 2))
    for axis in (0, 1):
        for amplitude, size, stream in _WARP_OCTAVES:
            cell = (5 * r / res[0], size * r / res[1], size * r / res[2])
            warp[..., axis] += amplitude * r * _value_noise(box, cell, spec.seed, stream + axis)
    warp[..., 0] += _voxel_nm(box, res, 1)[None, :, None]
    warp[..., 1] += _voxel_nm(box, res, 2)[None, None, :]
    return warp


def _voxel_nm(box: BBox, resolution: tuple[float, float, float], axis: int) -> np.ndarray:
    return np.arange(box.start[axis], box.stop[axis]) * resolution[axis]


def _power_nearest(tiles: np.ndarray, sites: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """For points grouped in tiles (tiles, points, 2), the index of the site of least power distance².

    The power distance |q − site|² − radius² partitions the plane into the
    radical (Laguerre) tessellation: two touching disks meet on their common
    tangent, so cells keep their disks' sizes, and every cell is convex and
    holds its own site when no site lies inside another's disk.

    Exact, but cheap: a k-d tree query at each tile's centre bounds which
    sites can win anywhere in the tile, and only those few are compared
    point by point.

    References
    ----------
    Aurenhammer, F. (1987). Power diagrams: properties, algorithms and
    applications. SIAM Journal on Computing 16(1), 78–96.
    """
    centre = tiles.mean(axis=1)
    half = np.linalg.norm(tiles - centre[:, None], axis=2).max(axis=1)[:, None]
    tree = cKDTree(sites)
    k = min(16, len(sites))
    while True:
        distance, j = tree.query(centre, k=k, workers=-1)
        distance, j = distance.reshape(len(centre), k), j.reshape(len(centre), k)
        best_upper = ((distance + half) ** 2 - radius[j] ** 2).min(axis=1)
        unseen_lower = np.maximum(distance[:, -1:] - half, 0)[:, 0] ** 2 - radius.max() ** 2
        if k == len(sites) or (unseen_lower > best_upper).all():
            break
        k = min(2 * k, len(sites))
    candidate = np.maximum(distance - half, 0) ** 2 - radius[j] ** 2 <= best_upper[:, None]
    count = candidate.sum(axis=1)
    j = np.take_along_axis(j, np.argsort(~candidate, axis=1, kind="stable"), 1)
    nearest = np.repeat(j[:, :1], tiles.shape[1], axis=1)
    # most tiles lie inside one cross-section; compare points only in the others, grouped by candidate count
    for c in np.unique(count[count > 1]):
        group = np.flatnonzero(count == c)
        jj = j[group, :c]
        offset = tiles[group][:, :, None, :] - sites[jj][:, None]
        power = offset[..., 0] ** 2 + offset[..., 1] ** 2 - radius[jj][:, None] ** 2
        nearest[group] = np.take_along_axis(jj, np.argmin(power, axis=2), 1)
    return nearest


def _axial_labels(skeleton: _Skeleton, positions: np.ndarray, first_slice: int) -> np.ndarray:
    """Each voxel's axial neurite, slice by slice, from the warped in-plane ``positions``."""
    depth, ny, nx, _ = positions.shape
    t = _TILE
    ty, tx = -(-ny // t), -(-nx // t)
    padded = np.pad(positions, ((0, 0), (0, ty * t - ny), (0, tx * t - nx), (0, 0)), mode="edge")
    tiles = padded.reshape(depth, ty, t, tx, t, 2).transpose(0, 1, 3, 2, 4, 5).reshape(depth, ty * tx, t * t, 2)
    lo = positions.reshape(-1, 2).min(axis=0) - skeleton.reach_nm
    hi = positions.reshape(-1, 2).max(axis=0) + skeleton.reach_nm
    labels = np.empty((depth, ty * tx, t * t), np.uint32)
    for i in range(depth):
        centres = skeleton.axial_yx[:, first_slice + i]
        radius = skeleton.axial_radius[:, first_slice + i]
        near = np.flatnonzero(np.isfinite(radius) & np.all((centres >= lo) & (centres <= hi), axis=1))
        labels[i] = near[_power_nearest(tiles[i], centres[near], radius[near])] + 1
    labels = labels.reshape(depth, ty, tx, t, t).transpose(0, 1, 3, 2, 4).reshape(depth, ty * t, tx * t)
    return labels[:, :ny, :nx]


def _near_points(cell: np.ndarray, half: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Grid cells within a box of half-size ``half[i]`` (z, y, x) of some ``cell[i]``."""
    near = np.zeros(shape, bool)
    for reach in np.unique(half[:, 1]):
        members = half[:, 1] == reach
        seeds = np.zeros(shape, bool)
        seeds[tuple(cell[members].T)] = True
        near |= ndi.maximum_filter(seeds, size=(2 * half[members, 0].max() + 1, 2 * reach + 1, 2 * reach + 1))
    return near


def _tube_distance(tubes: _Tubes, positions: np.ndarray, box: BBox, resolution: tuple[float, float, float],
                   slack: float) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance (nm, negative inside) from each voxel's warped position to the nearest tube surface,
    and that tube's id.

    Exact up to :data:`_TUBE_CUTOFF_NM` outside the tubes; beyond, the
    distance is +inf and the id 0. Only voxels whose warped position lands
    in a grid cell near a tube sample are looked up (the grid is
    :data:`_NEAR_CELL` voxels wide in-plane); ``slack`` bounds the warp.
    """
    res = np.asarray(resolution)
    signed = np.full(box.shape, np.inf, np.float32)
    ids = np.zeros(box.shape, np.uint32)
    if not len(tubes.radius):
        return signed, ids
    reach = float(tubes.radius.max()) + _TUBE_CUTOFF_NM
    canvas = box.expand((0, *np.ceil(slack / res[1:] + 1).astype(int)))
    start, stop = np.asarray(canvas.start), np.asarray(canvas.stop)
    inside = np.all((tubes.points >= start * res - reach) & (tubes.points <= (stop - 1) * res + reach), axis=1)
    if not inside.any():
        return signed, ids
    points, radius, owner = tubes.points[inside], tubes.radius[inside], tubes.ids[inside]
    grid = np.array([1, _NEAR_CELL, _NEAR_CELL])
    first, last = start // grid, (stop - 1) // grid
    # a point outside the canvas is clipped onto its face: its box of influence only grows
    cell = np.clip(np.rint(points / res).astype(np.int64) // grid, first, last) - first
    # rounding both the point and the warped position (in-plane only) costs up to a voxel
    half = np.ceil((radius + _TUBE_CUTOFF_NM)[:, None] / res + np.array([0.5, 1.0, 1.0])).astype(np.int64)
    near = _near_points(cell, half // grid + (grid > 1), tuple(last - first + 1))
    landing = np.rint(positions / res[1:]).astype(np.int64) // grid[1:] - first[1:]
    z = np.arange(box.shape[0])[:, None, None]
    where = np.nonzero(near[z, landing[..., 0], landing[..., 1]])
    query = np.column_stack([(where[0] + box.start[0]) * res[0], positions[where]])
    distance, j = cKDTree(points).query(query, distance_upper_bound=reach, workers=-1)
    score = distance - np.append(radius, 0.0)[j]
    # a voxel may be looked up in one block and not in another only where it is this far from every tube
    close = score < _TUBE_CUTOFF_NM
    signed[where] = np.where(close, score, np.inf)
    ids[where] = np.where(close, np.append(owner, 0)[j], 0)
    return signed, ids


def _neurite_labels(spec: DemoSpec, box: BBox, positions: np.ndarray) -> np.ndarray:
    """Neurite id of every voxel in ``box`` (no membranes yet)."""
    skeleton = _skeleton(spec)
    labels = _axial_labels(skeleton, positions, box.start[0])
    signed, owner = _tube_distance(skeleton.tubes, positions, box, spec.resolution, _warp_amplitude(spec))
    inside = signed < 0
    labels[inside] = owner[inside]
    return labels


def _boundary_band(labels: np.ndarray) -> np.ndarray:
    """Voxels with an in-plane 4-neighbour of another label: a two-voxel band on every boundary."""
    band = np.zeros(labels.shape, bool)
    for axis in (1, 2):
        lower = [slice(None)] * 3
        upper = [slice(None)] * 3
        lower[axis], upper[axis] = slice(None, -1), slice(1, None)
        differs = labels[tuple(lower)] != labels[tuple(upper)]
        band[tuple(lower)] |= differs
        band[tuple(upper)] |= differs
    return band


def _membrane_distance(band: np.ndarray, resolution: tuple[float, float, float], cap: float) -> np.ndarray:
    """In-plane distance (nm) to the boundary band, capped at ``cap`` so a halo makes it exact."""
    distance = np.full(band.shape, cap, np.float32)
    for i, plane in enumerate(band):
        if plane.any():
            distance[i] = np.minimum(ndi.distance_transform_edt(~plane, sampling=resolution[1:]), cap)
    return distance


# --------------------------------------------------------------------------
# The image.

def _halo(spec: DemoSpec) -> tuple[int, int, int]:
    """In-plane margin that makes membranes and blur exact at a block's edge."""
    pixel = min(spec.resolution[1:])
    blur = int(4.0 * spec.blur_nm / pixel + 0.5) + 1
    reach = int(math.ceil(_MEMBRANE_REACH_NM / pixel)) + 2
    return (0, blur + reach, blur + reach)


@functools.lru_cache(maxsize=16)
def _gap_threshold(seed: int, fraction: float) -> float:
    """The level of the gap noise below which a membrane vanishes, for the wanted ``fraction``."""
    sample = _value_noise(BBox((0, 0, 0), (32, 256, 256)), _GAP_CELL, seed, _GAP_STREAM)
    return float(np.quantile(sample, fraction))


# Grey levels follow the fibsem-gala sample in ../shared/data: cytoplasm
# about 150-190, membranes about 70, mitochondria darker than cytoplasm with a
# darker rim. Feature sizes of the noise fields are (z, y, x) voxels.
_GAP_CELL = (3.0, 12.0, 12.0)
_GAP_STREAM = 3


def _cytoplasm(spec: DemoSpec, box: BBox, ids: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Each neurite's own brightness, mottled texture, dark granules, section-to-section and slow shading."""
    seed = spec.seed
    section = 5.0 * (2 * _hash_ids(np.arange(box.start[0], box.stop[0]), seed, 1) - 1)
    image = (172.0 + 18.0 * (2 * _hash_ids(ids, seed, 2) - 1))[inverse].astype(np.float32)
    image += section[:, None, None].astype(np.float32)
    image += 12.0 * _value_noise(box, (1.0, 2.5, 2.5), seed, 4)
    image += 16.0 * _value_noise(box, (1.0, 6.0, 6.0), seed, 15)
    image -= 100.0 * np.clip(_value_noise(box, (1.0, 2.0, 2.0), seed, 16) - 0.45, 0, None)
    image += 8.0 * _value_noise(box, (12.0, 120.0, 120.0), seed, 5)
    # vesicle-filled neurites (boutons) are speckled with small dark dots
    vesicular = (_hash_ids(ids, seed, 6) < spec.vesicle_fraction)[inverse]
    speckle = np.clip(_value_noise(box, (1.0, 1.6, 1.6), seed, 7) - 0.35, 0, None)
    return image - np.where(vesicular, 140.0 * speckle, 0.0).astype(np.float32)


def _paint_mitochondria(spec: DemoSpec, box: BBox, positions: np.ndarray, labels: np.ndarray,
                        image: np.ndarray) -> np.ndarray:
    """Mitochondria over the cytoplasm: dark, striated by cristae, with a darker rim, clipped to their neurite."""
    signed, owner = _tube_distance(_skeleton(spec).mitochondria, positions, box, spec.resolution,
                                   _warp_amplitude(spec))
    inside = (signed < 0) & (owner == labels)
    cristae = 25.0 * _value_noise(box, (1.0, 1.5, 4.0), spec.seed, 8)
    rim = np.exp(-0.5 * ((signed + 8.0) / 6.0) ** 2)
    return np.where(inside, 85.0 + cristae - 45.0 * rim, image).astype(np.float32)


def _membrane_darkening(spec: DemoSpec, box: BBox, band: np.ndarray) -> np.ndarray:
    """How much the membranes darken each voxel: a Gaussian profile across the boundary band
    whose width wanders and whose contrast fades to nothing in the gaps."""
    seed = spec.seed
    distance = _membrane_distance(band, spec.resolution, _MEMBRANE_REACH_NM)
    width = 7.0 + 4.0 * _value_noise(box, (4.0, 30.0, 30.0), seed, 9)
    gap = _value_noise(box, _GAP_CELL, seed, _GAP_STREAM) - _gap_threshold(seed, spec.membrane_gaps)
    contrast = 120.0 * np.clip(gap / 0.12, 0, 1)
    profile = np.where(distance < _MEMBRANE_REACH_NM, np.exp(-0.5 * (distance / width) ** 2), 0.0)
    return (contrast * profile).astype(np.float32)


def _render(spec: DemoSpec, box: BBox, positions: np.ndarray, labels: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Grey values (float32, before blur and readout) of the tissue in ``box``."""
    ids, inverse = np.unique(labels, return_inverse=True)
    image = _cytoplasm(spec, box, ids, inverse.reshape(labels.shape))
    image = _paint_mitochondria(spec, box, positions, labels, image)
    image -= _membrane_darkening(spec, box, band)
    return image + np.float32(spec.noise) * _gaussian(box, spec.seed, 10)


def _validate_box(spec: DemoSpec, bbox: BBox) -> None:
    if bbox.empty or bbox.clip(spec.shape) != bbox:
        raise ProofQuestError(
            f"block {bbox.start}..{bbox.stop} is empty or leaves the demo volume of shape {spec.shape}; "
            "ask for a non-empty box inside it")


def generate_block(spec: DemoSpec, bbox: BBox) -> tuple[np.ndarray, np.ndarray]:
    """The image and ground truth of one block of the demo volume.

    The same voxels come out for a region whatever block it is asked in.

    Parameters
    ----------
    spec : the volume.
    bbox : the block, inside ``BBox.from_shape(spec.shape)``.

    Returns
    -------
    image : uint8 array of ``bbox.shape``; membranes dark, cytoplasm light.
    groundtruth : uint32 array of ``bbox.shape``; global neurite ids, 0 on
        membrane voxels.
    """
    _validate_box(spec, bbox)
    halo = _halo(spec)
    outer = bbox.expand(halo)
    positions = _warped_positions(spec, outer)
    labels = _neurite_labels(spec, outer, positions)
    band = _boundary_band(labels)
    image = _render(spec, outer, positions, labels, band)
    sigma = spec.blur_nm / np.asarray(spec.resolution[1:])
    image = ndi.gaussian_filter(image, sigma=(0.0, *sigma), truncate=4.0)
    image = image + np.float32(0.5 * spec.noise) * _gaussian(outer, spec.seed, 11)
    inner = bbox.relative_to(outer)
    image = np.clip(np.rint(image[inner]), 0, 255).astype(np.uint8)
    groundtruth = np.where(band[inner], 0, labels[inner]).astype(np.uint32)
    return image, groundtruth


def generate(spec: DemoSpec = DemoSpec()) -> tuple[np.ndarray, np.ndarray]:
    """The whole demo volume in memory (up to :data:`MAX_WHOLE_VOXELS` voxels).

    It is assembled from blocks of :data:`_WHOLE_CHUNKS`, so the working
    memory beyond the result stays that of one block.

    Returns
    -------
    image : uint8 array of ``spec.shape``.
    groundtruth : uint32 array of ``spec.shape``, 0 on membranes.
    """
    if math.prod(spec.shape) > MAX_WHOLE_VOXELS:
        raise ProofQuestError(
            f"a {spec.shape} volume is too big to hold in memory; write it chunk by chunk with iter_blocks")
    image = np.empty(spec.shape, np.uint8)
    groundtruth = np.empty(spec.shape, np.uint32)
    for bbox, block_image, block_truth in iter_blocks(spec, _WHOLE_CHUNKS):
        image[bbox.slices] = block_image
        groundtruth[bbox.slices] = block_truth
    return image, groundtruth


def iter_blocks(spec: DemoSpec, chunks: tuple[int, int, int] = (32, 128, 128)
                ) -> Iterator[tuple[BBox, np.ndarray, np.ndarray]]:
    """Yield ``(bbox, image, groundtruth)`` for each chunk-aligned block of the volume."""
    for bbox in BBox.from_shape(spec.shape).tiles(chunks):
        yield (bbox, *generate_block(spec, bbox))
