"""Planning: candidate sampling, scoring, ranking, CUDA-graph replay, plan following."""

from ctp.planning.planner import Planner, PlannerConfig, PlanResult, load_planner

__all__ = ["PlanResult", "Planner", "PlannerConfig", "load_planner"]
