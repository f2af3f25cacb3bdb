"""Images as data: resolved once where the config is read, then carried to the trial as bytes.

Nothing is downloaded: only images that ship inside scikit-image (or the user's
own files) are used. Test images and the DDPM training pool are pinned,
disjoint lists of source images.

A trial never opens a path (docs/design.md: "The cluster data path"): the driver (or the single-trial CLI)
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
import logging
import os
import re
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from glob import glob
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError

log = logging.getLogger(__name__)

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

# Pinned, disjoint lists (docs/design.md: "Data"). Test images are natural colour photos;
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
# Limits on what a user's file may be, before any work (environment variables raise them): a photo is
# a few MB and some tens of megapixels; a 144-MP scan decoded by every worker costs minutes and GBs.
MAX_FILE_BYTES = int(os.environ.get("DIPDDPM_MAX_IMAGE_BYTES", 64 * 2**20))
MAX_PIXELS = int(os.environ.get("DIPDDPM_MAX_IMAGE_PIXELS", 100_000_000))
KEEP_SIDE = 2048  # a larger photo is reduced (integer factor) on decoding: trials use at most a few hundred px
MAX_STEM = 64  # characters of a file's stem kept in its image id (the id names files we write)


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
    if not payload:
        raise ConfigError(f"{where}: not a decodable image (an empty file)")
    try:
        arr = _pillow(payload) if payload[:4] not in (b"II*\x00", b"MM\x00*") else _tiff(payload)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a user error
        reason = (str(exc).splitlines() or [""])[0][:200] or type(exc).__name__
        reason = re.sub(r"<[^>]* at 0x[0-9a-f]+>", "the file", reason)  # never a Python object's repr
        raise ConfigError(f"{where}: not a decodable image ({reason})") from None
    if arr.size > 4 * MAX_PIXELS:
        raise ConfigError(f"{where}: an image of shape {arr.shape} is more than the {MAX_PIXELS:,} pixels allowed")
    return to_rgb01(arr, where)


def _pillow(payload: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(payload)) as im:
        if im.width * im.height > MAX_PIXELS:  # checked from the header, before decoding
            raise ValueError(f"{im.width}×{im.height} px is more than the {MAX_PIXELS:,} pixels allowed "
                             "(DIPDDPM_MAX_IMAGE_PIXELS)")
        im.load()
        if im.mode in ("P", "PA", "LA"):
            im = im.convert("RGBA")
        elif im.mode == "1":
            im = im.convert("L")
        elif im.mode not in ("L", "RGB", "RGBA", "I;16", "I", "F"):
            im = im.convert("RGB")  # CMYK, YCbCr, LAB, ...
        factor = min(im.width, im.height) // KEEP_SIDE
        if factor >= 2 and im.mode != "I;16":  # box filter by an integer factor: the resize to data.size
            im = im.reduce(factor)  # that follows loses nothing to it, and no worker holds 36 MP of floats
        arr = np.asarray(im)
    if arr.dtype == np.int32 and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        arr = arr.astype(np.uint16)  # Pillow's 32-bit mode holding 16-bit samples
    return arr


def _tiff(payload: bytes) -> np.ndarray:
    try:
        return _pillow(payload)
    except Exception as exc:  # noqa: BLE001 - float or many-channel TIFFs
        if "pixels allowed" in str(exc):
            raise
        import tifffile

        with tifffile.TiffFile(io.BytesIO(payload)) as tif:
            page = tif.pages[0]
            if int(np.prod(page.shape)) > 4 * MAX_PIXELS:
                raise ValueError(f"shape {page.shape} is more than the {MAX_PIXELS:,} pixels allowed") from None
            return np.asarray(page.asarray())


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
    if arr.dtype.kind in "iu" and arr.size:
        arr = _integer_range(arr)
    arr = img_as_float(arr).astype(np.float64)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise ConfigError(f"{where}: expected a grey, RGB or RGBA image, got an array of shape {arr.shape}")
    if arr.shape[-1] == 4:  # straight alpha, composited on white
        alpha = arr[..., 3:]
        arr = arr[..., :3] * alpha + (1.0 - alpha)
    return np.clip(arr, 0.0, 1.0)


def _integer_range(arr: np.ndarray) -> np.ndarray:
    """Integer samples scaled by the range they actually use: 8- and 16-bit images by their dtype, as
    scikit-image does; 32/64-bit ones (which hold 8, 12 or 16 bits far below the dtype's maximum: an int32
    TIFF of 16-bit data read by its dtype is nearly black) by the smallest of 8/12/16/32 bits that holds them."""
    if arr.dtype.itemsize <= 2 or arr.min() < 0:
        return arr
    top = int(arr.max())
    bits = next((b for b in (8, 12, 16, 32) if top < 2**b), 64)
    return arr.astype(np.float64) / (2**bits - 1)


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
    """Read and check one image file into ImageData: a regular file (never a FIFO, a device or a link to
    one), at most MAX_FILE_BYTES, decodable, at most MAX_PIXELS."""
    shown = shown_path(path)
    try:
        st = path.stat()  # follows links: a loop or a dangling link fails here
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read image file {shown} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{where}: {shown} is not a regular file (a FIFO, a device or a folder?); expected an "
                          "image file")
    if st.st_size > MAX_FILE_BYTES:
        raise ConfigError(f"{where}: {shown} is {st.st_size / 2**20:.0f} MB, more than the "
                          f"{MAX_FILE_BYTES / 2**20:.0f} MB allowed (DIPDDPM_MAX_IMAGE_BYTES)")
    try:
        data, digest = _read_file(str(path), st.st_mtime_ns, st.st_size)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read image file {shown} ({exc.strerror or exc})") from None
    _decoded(digest, None, data, f"{where}: {shown}")  # decodable, or a ConfigError now
    return ImageData(image_id(path.stem, digest), str(path), digest, data)


def image_id(stem: str, digest: str) -> str:
    """A file image's identity, safe as part of every file name we write: its stem's letters, digits and
    `._-` (others become `_`), at most MAX_STEM of them, then 8 hex digits of its content hash (which keeps
    two images whose stems clean to the same text apart)."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", stem).strip("._") or "image"
    return f"{clean[:MAX_STEM]}-{digest[:8]}"


def shown_path(path: Path) -> str:
    text = str(path)
    return repr(text if len(text) <= 160 else text[:80] + "…" + text[-60:])


_SKIPS_SAID: set[tuple[str, str]] = set()


def _folder(path: Path, pattern: str, where: str) -> list[Path]:
    """The image files of a folder matching `pattern` (regular files only: a FIFO would block the read, a device
    never end); what was skipped for not being a regular file is said once per folder."""
    named = sorted(Path(p) for p in glob(str(path / pattern)) if p.lower().endswith(FILE_SUFFIXES))
    found = [p for p in named if _regular(p)]
    skipped = [p for p in named if p not in found]
    if skipped and (str(path), pattern) not in _SKIPS_SAID:
        _SKIPS_SAID.add((str(path), pattern))
        log.warning("%s: skipped %d entries of %s that are not regular files (a FIFO, a device, a link to one), "
                    "e.g. %s", where, len(skipped), shown_path(path), skipped[0].name)
    if not found:
        raise ConfigError(f"{where}: no image files ({', '.join(FILE_SUFFIXES)}) match {pattern!r} in {str(path)!r}")
    return found


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return True  # a broken link or a loop: file_image names it


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
        path = _absolute(base / path if not path.is_absolute() else path, at)
        if path.is_dir():
            out += [file_image(p, at) for p in _folder(path, "*", at)]
        elif path.exists() or path.is_symlink():
            out.append(file_image(path, at))  # a FIFO, a device or a link to one is refused there
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


def _absolute(path: Path, where: str) -> Path:
    """The path made absolute; a symlink loop anywhere in it is a one-line error, not a traceback."""
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:
        raise ConfigError(f"{where}: cannot follow {shown_path(path)} ({getattr(exc, 'strerror', None) or exc})") \
            from None


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
    if cfg.ddpm is None:  # no DDPM to train: no training pool
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
    if cfg.ddpm is not None:
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
    if cfg.ddpm is None:
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
