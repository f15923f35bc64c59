"""ctp: Consistency Trajectory Planning.

Offline model-based RL that plans by generating whole trajectories with a Consistency
Trajectory Model (CTM) distilled from an EDM diffusion teacher.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load_planner"]


def __getattr__(name: str):
    # Imported lazily so that `import ctp` (and `ctp --version`) does not load torch.
    if name == "load_planner":
        from ctp.planning import load_planner

        return load_planner
    raise AttributeError(f"module 'ctp' has no attribute {name!r}")
