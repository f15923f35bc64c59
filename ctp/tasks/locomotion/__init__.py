"""Gym-MuJoCo locomotion (Hopper, Walker2d, HalfCheetah): D4RL-recipe datasets and planning.

``spec`` names the tasks and their constants, ``actor`` holds the behaviour policy's network,
``behaviour`` trains it with SAC, ``generate`` turns it into Minari datasets, ``loader`` reads
them; ``task`` is the planning task (start-only plans, the value scorer), ``controller`` the
inverse-dynamics controller, ``curves`` its episode plot; ``baselines`` and ``rollout`` are
``ctp baseline bc``.
"""
