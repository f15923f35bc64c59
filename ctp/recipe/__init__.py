"""Recipes: one TOML file per planner, run end to end by ``ctp recipe FILE``.

A recipe names a dataset and the settings of every stage that turns it into a planner::

    data -> teacher -> pairs -> student -> critic -> value -> invdyn -> distance -> select
         -> bundle -> evaluate

Each table of the file holds the stage's options with the names of the library's configs
(``[teacher]``/``[student]``/``[critic]``/``[value]``/``[invdyn]``/``[distance]``:
``ctp.training.config.TrainConfig`` fields; ``[pairs]``:
``ctp.training.teacher_pairs.PairsConfig``'s; ``[bundle]``: planner defaults and
``scorers``, a table of scorer weights; ``[select]`` and ``[evaluate]``: episodes, seed,
vector envs). ``[pairs]``, ``[critic]``, ``[value]``, ``[invdyn]``, ``[distance]`` and
``[select]`` are optional. ``[teacher] from_planner = "PLANNER.pt"`` takes that planner
file's teacher instead of training one (its dataset must be ``[data]``'s, a
``hindsight_goals`` given must be the one the file records, which its students inherit; the
other ``[teacher]`` options are then unused), to distil a new student from a teacher that
already ships. The value
network and the inverse dynamics take the dataset, horizon and stride of the teacher
(invdyn's k, its ``stride``, may be a multiple of the plans' stride); the goal distance takes
the dataset (it reads single states' positions); the bundle holds every
network the recipe trains. ``[select]`` evaluates every kept student checkpoint
on validation seeds (1000.. by default, refused if they overlap the test seeds) and bundles
the best; without it the bundle takes the student's last checkpoint.

The run folder (``out``) holds ``recipe.json`` (the recipe as run; a rerun that changes a
stage which has made outputs, or a stage before one that has, is refused, naming the first
differing entry; stages that have not run take new settings, and budgets, ``max_minutes``,
may always change), one folder per training stage, ``pairs.pt``, ``select/`` (one JSON per
candidate), ``planner.pt``, ``eval.json`` and ``stages.json`` (per finished stage: wall
seconds and what it made). Rerunning the command skips finished stages and resumes the
interrupted one; a training stage's ``max_minutes`` is its budget over all attempts.
"""
