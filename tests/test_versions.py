"""The lower bounds in pyproject.toml: the installed versions meet them, and every API the code calls
at those versions is there (run this test against the bounds to check them)."""

import inspect
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _bounds() -> dict[str, Version]:
    text = PYPROJECT.read_text()  # (tomllib is Python 3.11+; the dependency list is one quoted string a line)
    block = text[text.index("dependencies = ["):]
    deps = re.findall(r'^\s*"([^"]+)",?\s*$', block[: block.index("]\n")], re.M)
    out = {}
    for dep in deps:
        m = re.match(r"([A-Za-z0-9_-]+)(\[[^\]]*\])?\s*>=\s*([0-9.]+)", dep)
        assert m, f"{dep}: expected a lower bound"
        out[m.group(1)] = Version(m.group(3))
    return out


@pytest.mark.parametrize("package,bound", sorted(_bounds().items()))
def test_the_installed_version_meets_the_bound(package, bound):
    assert Version(metadata.version(package)) >= bound


def test_the_apis_the_code_calls_exist():
    import ray.tune as tune
    import wandb
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: F401
    from skimage.metrics import structural_similarity
    from skimage.restoration import denoise_nl_means, estimate_sigma

    for name in ("report", "RunConfig", "FailureConfig", "Callback", "Tuner", "TuneConfig", "with_parameters",
                 "with_resources", "grid_search"):
        assert hasattr(tune, name), f"ray.tune.{name}"
    assert "finish_previous" in str(inspect.signature(wandb.init).parameters["reinit"].annotation)
    for fn, params in ((structural_similarity, ("channel_axis", "gaussian_weights", "use_sample_covariance")),
                       (denoise_nl_means, ("channel_axis",)), (estimate_sigma, ("channel_axis",))):
        sig = inspect.signature(fn).parameters
        assert all(p in sig or "kwargs" in sig for p in params), (fn.__name__, params)
    from diffusers import UNet2DModel  # noqa: F401
    from diffusers.optimization import get_cosine_schedule_with_warmup  # noqa: F401
    assert "norm_num_groups" in inspect.signature(UNet2DModel.__init__).parameters


def test_the_fused_adam_probe_answers_on_this_build():
    import torch

    from dipddpm.loop import FlatAdam, fused_kernel_works

    works = fused_kernel_works("cpu")
    assert isinstance(works, bool)
    opt = FlatAdam([torch.nn.Parameter(torch.ones(3))], 0.1)
    assert (opt.fallback is None) == works
