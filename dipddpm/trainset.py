"""DDPM training data: reproducible random crops of a pinned training pool (docs/design.md: "Hybrid DIP → DDPM", "Data").

Pool images are first resized the way test images are (shorter side -> data.size),
then `dataset_size` distinct crop windows of `ddpm.crop` px are drawn, with random
flips and 90° rotations, from the (seed, 'train_pool', 'ddpm_data') generator.
"""

from __future__ import annotations

import numpy as np
import torch

from .images import ImageData, pool_array
from .rng import numpy_generator


def training_crops(ddpm_cfg, size: int, seed: int, images: tuple[ImageData, ...]) -> tuple[torch.Tensor, int]:
    """(dataset_size, 3, crop, crop) float32 in [0,1] from the pool `images`, and the number of source images.

    The crop windows are `dataset_size` distinct positions drawn uniformly from every position the pool
    offers (so large frames are not under-sampled and no window repeats), each with a random 90° rotation
    and horizontal flip."""
    pool = [pool_array(img, size) for img in images]
    rng = numpy_generator(seed, "train_pool", "ddpm_data")
    c = ddpm_cfg.crop
    per_image = np.array([(p.shape[0] - c + 1) * (p.shape[1] - c + 1) for p in pool], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(per_image)])
    picks = np.sort(rng.choice(int(starts[-1]), size=ddpm_cfg.dataset_size, replace=False))
    crops = np.empty((ddpm_cfg.dataset_size, c, c, 3), dtype=np.float32)
    for n, pos in enumerate(picks):
        i = int(np.searchsorted(starts, pos, side="right") - 1)
        img = pool[i]
        top, left = divmod(int(pos - starts[i]), img.shape[1] - c + 1)
        crop = np.rot90(img[top : top + c, left : left + c], k=int(rng.integers(0, 4)))
        crops[n] = crop[:, ::-1] if rng.random() < 0.5 else crop
    return torch.from_numpy(crops.transpose(0, 3, 1, 2).copy()), len(images)
