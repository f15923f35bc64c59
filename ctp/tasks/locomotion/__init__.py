"""Gym-MuJoCo locomotion (Hopper, Walker2d, HalfCheetah): D4RL-recipe datasets.

``spec`` names the tasks and their constants, ``actor`` holds the behaviour policy's network,
``behaviour`` trains it with SAC, ``generate`` turns it into Minari datasets.
"""
