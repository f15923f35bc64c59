"""Recipes: one TOML file per planner, run end to end by ``ctp recipe FILE`` (``run``)."""
