"""ctp: Consistency Trajectory Planning.

Offline model-based RL that plans by generating whole trajectories with a Consistency
Trajectory Model (CTM) distilled from an EDM diffusion teacher.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
