"""``ctp data generate NAME`` as a library call: one name -> its family's generator."""

from __future__ import annotations

from ctp.errors import CTPError


def generate_named(name: str, steps: int = 1_000_000, seed: int = 123, force: bool = False,
                   train_policy: bool = False, policy_seed: int = 0, run_dir: str = "",
                   progress: bool = True) -> str:
    """Generate dataset ``name`` (e.g. ``pointmaze-umaze``, ``hopper-medium``) into the Minari
    data folder; returns a one-line summary. The behaviour-policy options are locomotion's."""
    from ctp.tasks.locomotion.spec import DATASET_NAMES

    if name in DATASET_NAMES:
        return _locomotion(name, steps, seed, force, train_policy, policy_seed, run_dir,
                           progress)
    from ctp.tasks.pointmaze.generate import GenerateConfig, generate_dataset
    from ctp.tasks.pointmaze.spec import MAZES, get_maze_spec

    try:
        maze = get_maze_spec(name)
    except CTPError:
        names = (*(spec.env_name for spec in MAZES.values()), *DATASET_NAMES)
        raise CTPError(f"unknown dataset {name!r}: expected one of {', '.join(names)}") from None
    if train_policy or run_dir:
        raise CTPError(f"--train-policy/--run-dir: only for locomotion datasets, not {name}")
    result = generate_dataset(GenerateConfig(maze, steps=steps, seed=seed, force=force,
                                             progress=progress))
    return (f"wrote {result.dataset_id}: {result.steps} steps, {result.episodes} episodes, "
            f"ref_min_score {result.ref_min_score:.2f}, ref_max_score "
            f"{result.ref_max_score:.2f}, {result.seconds:.0f} s")


def _locomotion(name: str, steps: int, seed: int, force: bool, train_policy: bool,
                policy_seed: int, run_dir: str, progress: bool) -> str:
    import torch

    from ctp.tasks.locomotion.generate import LocomotionGenerateConfig, generate_locomotion

    torch.set_num_threads(1)  # SAC's small MLPs: one thread is fastest, and leaves a core free
    result = generate_locomotion(LocomotionGenerateConfig(
        name, steps=steps, seed=seed, force=force, train_policy=train_policy,
        policy_seed=policy_seed, run_dir=run_dir, progress=progress,
    ))
    return (f"wrote {result.dataset_id}: {result.steps} steps, {result.episodes} episodes, "
            f"return {result.return_mean:.1f} +- {result.return_se:.1f} "
            f"(D4RL-normalised {result.normalized_mean:.1f}), random policy "
            f"{result.random_return:.1f}, {result.seconds:.0f} s")
