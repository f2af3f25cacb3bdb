"""dipddpm's orchestrator: ablation sweeps on Ray Tune, their records, reports and verdicts.

    import orchestrator
    res = orchestrator.sweep("sweeps/staged.yaml", profile="cpu")
    res.verdicts, res.table("cells"), orchestrator.load_results("runs/staged/cpu")

See `orchestrator.api`. Importing this package imports neither torch nor Ray.
"""

from .api import Results, load_results, open_run, sweep

__all__ = ["Results", "load_results", "open_run", "sweep"]
