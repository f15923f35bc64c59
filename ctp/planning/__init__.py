"""Planning: candidate sampling, composable scorers, ranking, CUDA-graph replay, bundles."""

from ctp.planning.config import PlannerConfig
from ctp.planning.planner import Planner, PlanResult, load_planner

__all__ = ["PlanResult", "Planner", "PlannerConfig", "load_planner"]
