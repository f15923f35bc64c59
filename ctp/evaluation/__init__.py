"""Closed-loop evaluation of a planner (``evaluate``) and two evaluations paired by seed
(``comparison``)."""
