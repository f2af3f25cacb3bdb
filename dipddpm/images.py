"""Images as data: resolved once where the config is read, then carried to the trial as bytes.

Nothing is downloaded: only images that ship inside scikit-image (or the user's
own files) are used. Test images and the DDPM training pool are pinned,
disjoint lists of source images.

A trial never opens a path (DESIGN §11): the driver (or the single-trial CLI)
resolves every `data.images` entry (bundled name, absolute or relative path,
folder, or `data.root` + `glob`) and every pool entry once, into `ImageData`:
an identity, the file's bytes and their content hash. A bundled image travels
as its name (every node has scikit-image, at the version the record notes).
An image's identity is its name plus a short content hash (`x-1a2b3c4d`), so
two files with the same stem are two images; RNG streams, cache keys and
`per_image` all follow from it.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field
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

FILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


@dataclass(frozen=True)
class ImageData:
    """One source image as a trial receives it: identity, content hash, and the bytes to decode."""

    id: str  # the bundled name, or the file's stem + "-" + the first 8 hex digits of its content hash
    source: str  # where it was found (bundled name or resolved path): provenance, never opened by a trial
    sha256: str  # of the file's bytes; of the decoded pixels for a bundled image
    payload: bytes | None = field(default=None, repr=False)  # the encoded file; None for a bundled image

    @property
    def bundled(self) -> bool:
        return self.payload is None

    def pixels(self) -> np.ndarray:
        """(H, W, 3) float64 in [0, 1]."""
        return _decoded(self.sha256, self.id if self.bundled else None, self.payload)

    def describe(self) -> dict:
        """What a record keeps of it (no bytes)."""
        return {"id": self.id, "source": self.source, "sha256": self.sha256}


@dataclass(frozen=True)
class ImageSet:
    """A trial's images: the test images it restores and (hybrid) the DDPM's training pool."""

    test: tuple[ImageData, ...]
    pool: tuple[ImageData, ...] = ()

    def identity(self) -> dict:
        """What a trial key holds of its images: their identities, in order."""
        out = {"test": [i.id for i in self.test]}
        if self.pool:
            out["pool"] = [i.id for i in self.pool]
        return out

    def all(self) -> tuple[ImageData, ...]:
        return self.test + self.pool


# ---- decoding -------------------------------------------------------------------------------

_DECODED: dict[str, np.ndarray] = {}  # sha256 -> pixels; a handful of photos per process
_DECODED_MAX = 32


def _decoded(sha: str, bundled: str | None, payload: bytes | None, where: str = "") -> np.ndarray:
    arr = _DECODED.get(sha)
    if arr is None:
        arr = _bundled_raw(bundled) if bundled is not None else decode(payload, where or f"image {sha[:8]}")
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.pop(next(iter(_DECODED)))
        _DECODED[sha] = arr
    return arr


@lru_cache(maxsize=32)
def _bundled_raw(name: str) -> np.ndarray:
    from skimage import data

    return to_rgb01(np.asarray(_BUNDLED[name](data)), name)


def decode(payload: bytes, where: str) -> np.ndarray:
    """Encoded image bytes -> (H, W, 3) float64 in [0, 1]; a ConfigError when they are not an image.
    Pillow reads the common formats (the first frame of several); tifffile the float TIFFs it cannot."""
    try:
        arr = _pillow(payload) if payload[:4] not in (b"II*\x00", b"MM\x00*") else _tiff(payload)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a user error
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{where}: not a decodable image ({reason})") from None
    return to_rgb01(arr, where)


def _pillow(payload: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(payload)) as im:
        im.load()
        if im.mode in ("P", "PA", "LA"):
            im = im.convert("RGBA")
        elif im.mode == "1":
            im = im.convert("L")
        elif im.mode not in ("L", "RGB", "RGBA", "I;16", "I", "F"):
            im = im.convert("RGB")  # CMYK, YCbCr, LAB, ...
        arr = np.asarray(im)
    if arr.dtype == np.int32 and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        arr = arr.astype(np.uint16)  # Pillow's 32-bit mode holding 16-bit samples
    return arr


def _tiff(payload: bytes) -> np.ndarray:
    try:
        return _pillow(payload)
    except Exception:  # noqa: BLE001 - float or many-channel TIFFs
        import tifffile

        return np.asarray(tifffile.imread(io.BytesIO(payload)))


def to_rgb01(arr: np.ndarray, where: str) -> np.ndarray:
    """Grey, RGB or RGBA (composited on white) -> (H, W, 3) float64 in [0, 1]."""
    from skimage.util import img_as_float

    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.dtype.kind == "f" and arr.size and (not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1):
        raise ConfigError(f"{where}: a float image must hold values in [0, 1], got "
                          f"[{np.nanmin(arr):.4g}, {np.nanmax(arr):.4g}]")
    if arr.dtype == bool:
        arr = arr.astype(np.float64)
    arr = img_as_float(arr).astype(np.float64)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise ConfigError(f"{where}: expected a grey, RGB or RGBA image, got an array of shape {arr.shape}")
    if arr.shape[-1] == 4:  # straight alpha, composited on white
        alpha = arr[..., 3:]
        arr = arr[..., :3] * alpha + (1.0 - alpha)
    return np.clip(arr, 0.0, 1.0)


# ---- resolution (driver side) ---------------------------------------------------------------

@lru_cache(maxsize=256)
def _read_file(path: str, mtime_ns: int, size: int) -> tuple[bytes, str]:
    """A file's bytes and sha256, read once per (path, mtime, size)."""
    data = Path(path).read_bytes()
    return data, hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=64)
def bundled_image(name: str) -> ImageData:
    digest = hashlib.sha256(np.ascontiguousarray(_bundled_raw(name)).tobytes()).hexdigest()
    return ImageData(name, name, digest, None)


def file_image(path: Path, where: str) -> ImageData:
    """Read and check one image file (decodable) into ImageData."""
    try:
        st = path.stat()
        data, digest = _read_file(str(path), st.st_mtime_ns, st.st_size)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read image file {str(path)!r} ({exc.strerror})") from None
    _decoded(digest, None, data, f"{where}: {str(path)!r}")  # decodable, or a ConfigError now
    return ImageData(f"{path.stem}-{digest[:8]}", str(path), digest, data)


def _folder(path: Path, pattern: str, where: str) -> list[Path]:
    found = sorted(Path(p) for p in glob(str(path / pattern)) if p.lower().endswith(FILE_SUFFIXES))
    if not found:
        raise ConfigError(f"{where}: no image files ({', '.join(FILE_SUFFIXES)}) match {pattern!r} in {str(path)!r}")
    return found


def resolve_images(refs: tuple[str, ...], root: str | None, pattern: str | None, where: str,
                   base: Path | None = None, indexed: bool = True) -> tuple[ImageData, ...]:
    """Each reference (bundled name, file, folder; relative paths from `base`, default the working
    directory, or from `root`), then root + pattern when `refs` is empty. One image listed twice
    (by name, path or content) is a config error. Errors name `where[i]` (`where` alone if not indexed)."""
    base = Path.cwd() if base is None else base
    out: list[ImageData] = []
    for i, ref in enumerate(refs):
        at = f"{where}[{i}]" if indexed else where
        if ref in _BUNDLED:
            out.append(bundled_image(ref))
            continue
        path = Path(os.path.expanduser(ref))
        path = (Path(root) / path if root and not path.is_absolute() else path)
        path = (base / path).resolve() if not path.is_absolute() else path
        if path.is_dir():
            out += [file_image(p, at) for p in _folder(path, "*", at)]
        elif path.is_file():
            out.append(file_image(path, at))
        else:
            raise ConfigError(f"{at}: unknown image {ref!r}; expected a bundled name ({', '.join(BUNDLED_NAMES)}), "
                              "an image file or a folder of them")
    if root and not refs:
        folder = (base / Path(os.path.expanduser(root))).resolve()
        if not folder.is_dir():
            raise ConfigError(f"data.root: expected an existing folder, got {root!r}")
        out += [file_image(p, "data.glob") for p in _folder(folder, pattern or "*", "data.glob")]
    if not out:
        raise ConfigError(f"{where}: expected at least one image, got none")
    _no_repeats(out, where)
    return tuple(out)


def _no_repeats(images: list[ImageData], where: str) -> None:
    seen: dict[str, int] = {}
    for i, img in enumerate(images):
        if img.sha256 in seen:
            first = images[seen[img.sha256]]
            raise ConfigError(f"{where}: {img.source!r} is the same image as {first.source!r} ({first.id}); "
                              "expected each image once")
        seen[img.sha256] = i


def images_for(cfg, base: Path | None = None) -> ImageSet:
    """Resolve a trial config's test images and (hybrid) training pool: the two must be disjoint, and the
    pool must hold at least `ddpm.dataset_size` distinct crops."""
    test = resolve_images(cfg.data.images, cfg.data.root, cfg.data.glob, "data.images", base)
    smallest = smallest_side(cfg)
    _large_enough(test, smallest, "data.images")
    if cfg.method != "hybrid":
        return ImageSet(test)
    dd = cfg.ddpm
    key = "ddpm.pool" if dd.pool else "ddpm.train_images"
    pool = resolve_images((dd.pool,) if dd.pool else dd.train_images, None, None, key, base, indexed=not dd.pool)
    _large_enough(pool, smallest, key)
    shared = [p for p in pool if p.sha256 in {t.sha256 for t in test}]
    if shared:
        raise ConfigError(f"{key}: expected images disjoint from data.images, got "
                          f"{', '.join(p.id for p in shared)} in both")
    distinct = distinct_crops(pool, cfg.data.size, dd.crop)
    if dd.dataset_size > distinct:
        raise ConfigError(f"ddpm.dataset_size: expected at most {distinct} (the distinct {dd.crop} px crops of the "
                          f"{len(pool)} pool images at data.size {cfg.data.size}), got {dd.dataset_size}")
    return ImageSet(test, pool)


def smallest_side(cfg) -> int:
    """The smallest image side the trial's networks accept: a skip net halves its input `scales` times and
    BatchNorm needs two values per channel at the bottom; a UNet halves it once per level but the last."""
    sides = [16]  # data.size's own floor
    if cfg.dip is not None and cfg.dip.net == "skip":
        sides.append(2 * 2**cfg.dip.scales)
    if cfg.method == "hybrid":
        sides.append(2 ** (len(cfg.ddpm.channels) - 1))
    return max(sides)


def _large_enough(images: tuple[ImageData, ...], side: int, where: str) -> None:
    """A source image smaller than the nets accept would be upscaled from almost nothing and scored."""
    for img in images:
        h, w = img.pixels().shape[:2]
        if min(h, w) < side:
            raise ConfigError(f"{where}: {img.source!r} is {w}×{h} px; expected at least {side} px on its shorter "
                              "side (the smallest input these networks accept)")


def pool_shape(img: ImageData, size: int) -> tuple[int, int]:
    """(H', W') of a pool image once resized the way test images are (shorter side -> size)."""
    h, w = img.pixels().shape[:2]
    factor = size / min(h, w)
    return max(size, round(h * factor)), max(size, round(w * factor))


def distinct_crops(pool: tuple[ImageData, ...], size: int, crop: int) -> int:
    """How many different crop windows the pool offers (positions; flips and rotations not counted)."""
    return sum(max(0, h - crop + 1) * max(0, w - crop + 1) for h, w in (pool_shape(img, size) for img in pool))


def bundled_set(cfg) -> ImageSet:
    """The ImageSet of a config that names bundled images only (no file is read)."""
    def named(refs, where):
        bad = next((r for r in refs if r not in _BUNDLED), None)
        if bad is not None or not refs:
            raise ConfigError(f"{where}: {bad!r} is a file reference; resolve it with images_for first")
        return tuple(bundled_image(r) for r in refs)

    test = named(cfg.data.images, "data.images")
    if cfg.method != "hybrid":
        return ImageSet(test)
    if cfg.ddpm.pool:
        raise ConfigError(f"ddpm.pool: {cfg.ddpm.pool!r} is a folder; resolve it with images_for first")
    return ImageSet(test, named(cfg.ddpm.train_images, "ddpm.train_images"))


# ---- pixels for the methods -----------------------------------------------------------------

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


def test_tensor(img: ImageData, size: int) -> torch.Tensor:
    """A test image as a float32 (3, size, size) tensor in [0,1]."""
    arr = centre_crop_resize(img.pixels(), size)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).to(torch.float32)


def load_image(name: str, size: int) -> torch.Tensor:
    """A bundled test image by name (tests and calibration scripts)."""
    return test_tensor(bundled_image(name), size)


def pool_array(img: ImageData, size: int) -> np.ndarray:
    """A training-pool image resized the way test images are: shorter side -> `size`. (H', W', 3) float64.

    Test images are centre-cropped to a square and resized to `size`; the pool
    image keeps its whole frame but gets the same shorter-side scale, so random
    crops of it show objects at the scale the test images show them.
    """
    from skimage.transform import resize

    arr = img.pixels()
    shape = pool_shape(img, size)
    return resize(arr, shape, anti_aliasing=shape[0] < arr.shape[0], order=3, mode="reflect").clip(0.0, 1.0)
