"""Images as data: resolved once where the config is read, identified by name + content hash."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dipddpm import trial
from dipddpm.config import nested, trial_key
from dipddpm.trial import resolve
from dipddpm.errors import ConfigError
from dipddpm.images import decode, images_for, resolve_images
from conftest import TINY


def _png(path, arr) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(arr)).save(path)


def _photo(seed: int, shape=(48, 48, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _cfg(images, **dotted):
    return resolve([("tiny", TINY), ("set", nested({"data.images": images} | dotted))], "cpu")


def test_two_files_with_the_same_name_are_two_images(tmp_path, monkeypatch):
    _png(tmp_path / "a" / "x.png", _photo(1))
    _png(tmp_path / "b" / "x.png", _photo(2))
    monkeypatch.chdir(tmp_path)
    cfg = _cfg(["a/x.png", "b/x.png"])
    images = images_for(cfg)
    ids = [img.id for img in images.test]
    assert len(set(ids)) == 2 and all(i.startswith("x-") and len(i) == 10 for i in ids)
    obs = list(trial.observations(cfg, images))
    assert [o.name for o in obs] == ids
    noise = [o.y01 - o.x0 for o in obs]  # each image its own RNG stream
    assert not np.allclose(noise[0].numpy(), noise[1].numpy())
    # the same config over other file contents is another trial
    _png(tmp_path / "b" / "x.png", _photo(3))
    assert trial_key(cfg, images_for(cfg)) != trial_key(cfg, images)


def test_a_relative_path_works_in_a_trial_that_runs_elsewhere(tmp_path, monkeypatch):
    _png(tmp_path / "photos" / "cat.png", _photo(4, (40, 56, 3)))
    monkeypatch.chdir(tmp_path)
    cfg = _cfg(["photos/cat.png"])
    images = images_for(cfg)  # the driver reads it here, once
    elsewhere = tmp_path / "trial-cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a Tune trial runs in another working directory
    (tmp_path / "photos" / "cat.png").unlink()  # and on a node that has no such file
    res = trial.run(cfg, images=images)
    assert res.status == "ok" and list(res.per_image) == [images.test[0].id]
    assert 10 < res.metrics["psnr_es"] < 40


def test_listing_one_image_twice_is_a_config_error(tmp_path, monkeypatch):
    _png(tmp_path / "p.png", _photo(5))
    _png(tmp_path / "copy.png", _photo(5))  # same pixels, same encoder: the same bytes
    monkeypatch.chdir(tmp_path)
    for images in (["astronaut", "astronaut"], ["p.png", "copy.png"], ["p.png", str(tmp_path / "p.png")]):
        with pytest.raises(ConfigError, match=r"^data\.images: .* is the same image as .*expected each image once"):
            images_for(_cfg(images))


@pytest.mark.parametrize("ref,message", [
    ("no_such_photo", r"^data\.images\[1\]: unknown image 'no_such_photo'; expected a bundled name"),
    ("junk.png", r"^data\.images\[1\]: '.*junk\.png': not a decodable image"),
])
def test_a_bad_image_reference_is_one_line_naming_its_entry(ref, message, tmp_path, monkeypatch):
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=message) as info:
        images_for(_cfg(["astronaut", ref]))
    assert "\n" not in str(info.value)


def test_a_folder_entry_lists_its_images_in_name_order(tmp_path):
    for n in (2, 1):
        _png(tmp_path / "set" / f"im{n}.png", _photo(10 + n))
    (tmp_path / "set" / "notes.txt").write_text("not an image")
    found = resolve_images((str(tmp_path / "set"),), None, None, "data.images")
    assert [img.id.split("-")[0] for img in found] == ["im1", "im2"]


def test_rgba_is_composited_on_white_and_grey_becomes_rgb():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 0  # fully transparent red
    rgba[0, 0, 3] = 255  # one opaque red pixel
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG")
    out = decode(buf.getvalue(), "t")
    assert out.shape == (4, 4, 3)
    np.testing.assert_allclose(out[1, 1], [1, 1, 1])
    np.testing.assert_allclose(out[0, 0], [1, 0, 0])
    grey = io.BytesIO()
    Image.fromarray(np.full((3, 3), 128, np.uint8)).save(grey, format="PNG")
    np.testing.assert_allclose(decode(grey.getvalue(), "t"), 128 / 255)
