"""dipddpm's orchestrator: ablation sweeps on Ray Tune, their records, reports and verdicts.

    import orchestrator
    res = orchestrator.sweep("sweeps/staged.yaml", profile="cpu")
    res.verdicts, res.table("cells"), orchestrator.load_results("runs/staged/cpu")

See `orchestrator.api`. Importing this package imports neither torch nor Ray.
"""

import sys
import types

from .api import Results, load_results, open_run, publish, sweep

__all__ = ["Results", "load_results", "open_run", "publish", "sweep"]


class _Package(types.ModuleType):
    """This package, whose API names stay the API's: importing the subpackage `orchestrator.sweep` (the first
    call of `orchestrator.sweep(...)` does) would otherwise rebind `orchestrator.sweep` to that subpackage, and
    the second call would find a module where the function was."""

    def __setattr__(self, name, value):
        if name in __all__ and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
