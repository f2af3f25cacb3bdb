"""Images: scikit-image's bundled photos by name, or files; centre-crop and resize.

Nothing is downloaded: only images that ship inside scikit-image (or the
user's own files) are used. Test images and the DDPM training pool are pinned,
disjoint lists of source images.
"""

from __future__ import annotations

from functools import lru_cache
from glob import glob
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError

# name -> loader of an (H, W[, C]) uint8/float array. All ship with scikit-image.
_BUNDLED = {
    "astronaut": lambda d: d.astronaut(),
    "coffee": lambda d: d.coffee(),
    "chelsea": lambda d: d.chelsea(),
    "rocket": lambda d: d.rocket(),
    "immunohistochemistry": lambda d: d.immunohistochemistry(),
    "hubble_deep_field": lambda d: d.hubble_deep_field(),
    "retina": lambda d: d.retina(),
    "colorwheel": lambda d: d.colorwheel(),
    "stereo_motorcycle": lambda d: d.stereo_motorcycle()[0],
    "stereo_motorcycle_right": lambda d: d.stereo_motorcycle()[1],
    "logo": lambda d: d.logo(),
    "camera": lambda d: d.camera(),
    "brick": lambda d: d.brick(),
    "grass": lambda d: d.grass(),
    "gravel": lambda d: d.gravel(),
    "coins": lambda d: d.coins(),
    "moon": lambda d: d.moon(),
    "page": lambda d: d.page(),
    "text": lambda d: d.text(),
}
BUNDLED_NAMES = tuple(sorted(_BUNDLED))

# Pinned, disjoint lists (DESIGN §6). Test images are natural colour photos;
# the training pool is every other colour photo that ships with scikit-image.
TEST_IMAGES = ("astronaut", "coffee", "chelsea")
TRAIN_IMAGES = (
    "rocket",
    "stereo_motorcycle",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "colorwheel",
)
assert not set(TEST_IMAGES) & set(TRAIN_IMAGES)

_FILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def image_id(ref: str) -> str:
    """A short, stable name for an image reference (bundled name or file stem)."""
    return ref if ref in _BUNDLED else Path(ref).stem


def resolve_refs(images: tuple[str, ...], root: str | None, pattern: str, path: str = "data.images") -> list[str]:
    """Check each reference exists and return the list to load (root+glob appended)."""
    refs = []
    for i, ref in enumerate(images):
        if ref in _BUNDLED:
            refs.append(ref)
            continue
        candidate = Path(root, ref) if root and not Path(ref).is_absolute() else Path(ref)
        if candidate.is_file():
            refs.append(str(candidate))
            continue
        raise ConfigError(
            f"{path}[{i}]: unknown image {ref!r}; expected a bundled name "
            f"({', '.join(BUNDLED_NAMES)}) or an existing image file"
        )
    if root and not images:
        if not Path(root).is_dir():
            raise ConfigError(f"data.root: expected an existing folder, got {root!r}")
        found = sorted(p for p in glob(str(Path(root) / pattern)) if p.lower().endswith(_FILE_SUFFIXES))
        if not found:
            raise ConfigError(f"data.glob: no image files match {pattern!r} in {root!r}")
        refs.extend(found)
    return refs


@lru_cache(maxsize=64)
def _load_raw(ref: str) -> np.ndarray:
    """(H, W, 3) float64 in [0,1] from a bundled name or a file."""
    if ref in _BUNDLED:
        from skimage import data

        arr = _BUNDLED[ref](data)
    else:
        from skimage import io

        try:
            arr = io.imread(ref)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a user error
            raise ConfigError(f"data.images: cannot read image file {ref!r} ({exc})") from None
    return _to_rgb01(np.asarray(arr), ref)


def _to_rgb01(arr: np.ndarray, ref: str) -> np.ndarray:
    from skimage.util import img_as_float

    arr = img_as_float(arr)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise ConfigError(f"data.images: {ref!r} is not an RGB or grey image (shape {arr.shape})")
    return np.clip(arr[..., :3], 0.0, 1.0)


def centre_crop_resize(arr: np.ndarray, size: int) -> np.ndarray:
    """Largest centred square, then anti-aliased resize to size×size. (H, W, 3) -> (size, size, 3)."""
    from skimage.transform import resize

    h, w = arr.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = arr[top : top + side, left : left + side]
    if side == size:
        return square
    return resize(square, (size, size), anti_aliasing=side > size, order=3, mode="reflect").clip(0.0, 1.0)


def load_image(ref: str, size: int) -> torch.Tensor:
    """A test image as a float32 (3, size, size) tensor in [0,1]."""
    arr = centre_crop_resize(_load_raw(ref), size)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).to(torch.float32)


def load_pool_image(ref: str, size: int) -> np.ndarray:
    """A training-pool image resized the way test images are: shorter side -> `size`. (H', W', 3) float64.

    Test images are centre-cropped to a square and resized to `size`; the pool
    image keeps its whole frame but gets the same shorter-side scale, so random
    crops of it show objects at the scale the test images show them.
    """
    from skimage.transform import resize

    arr = _load_raw(ref)
    h, w = arr.shape[:2]
    factor = size / min(h, w)
    shape = (max(size, round(h * factor)), max(size, round(w * factor)))
    return resize(arr, shape, anti_aliasing=factor < 1, order=3, mode="reflect").clip(0.0, 1.0)
