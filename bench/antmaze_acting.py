"""How well an AntMaze action model walks the maze when the directions are right.

A planner's inverse dynamics ``a = f(s_t, target x, y)`` is asked, at every step, for a target
``--ask`` metres from the ant toward the maze solver's next waypoint (the data-generating
controller's solver, ``ctp.tasks.antmaze.expert.WaypointSolver``, without jitter). The solver
stands in for a perfect plan, so the success rate is the action model's ceiling on the
evaluation task: what a planner could reach with it if its plans pointed the right way. It is
a diagnostic, never a planner (the solver is not learned from the data).

Run: ``python bench/antmaze_acting.py --invdyn runs/.../invdyn/latest.pt --env
antmaze-medium-play --ask 2.0 --episodes 20 --seed 1000 [--out F.json]``; prints one line and
writes the JSON (success rate, arrival steps, how each failure ended: flipped or upright and
its distance to the goal).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def walk(invdyn: nn.Module, env_name: str, ask: float, episodes: int, seed: int,
         progress: bool = False) -> dict[str, Any]:
    """Roll ``episodes`` evaluation episodes (one vector env, seeds ``seed``...) with targets
    ``ask`` m along the solver's direction -> success rate, arrival steps and failures."""
    from tqdm import tqdm

    from ctp.tasks.antmaze.envs import make_vector_env
    from ctp.tasks.antmaze.expert import WaypointSolver
    from ctp.tasks.antmaze.maze_steering import flipped_mask
    from ctp.tasks.antmaze.spec import get_spec
    from ctp.tasks.antmaze.task import ANTMAZE

    spec = get_spec(env_name)
    envs = make_vector_env(spec, episodes, stop_at_goal=True)
    obs, _ = envs.reset(seed=list(range(seed, seed + episodes)))
    rng = np.random.default_rng(seed)
    solvers = [WaypointSolver(spec, rng, jitter=False) for _ in range(episodes)]
    done = np.zeros(episodes, dtype=bool)
    arrival = np.full(episodes, -1)
    for t in tqdm(range(spec.episode_steps), desc=f"walk {env_name}", disable=not progress):
        state = ANTMAZE.observe(obs).state  # [E, 29]: x, y, then the ant's 27 (float32)
        xy = np.asarray(obs["achieved_goal"], dtype=np.float64)  # the solver's own precision
        directions = np.stack([s.direction(p, g) for s, p, g
                               in zip(solvers, xy, obs["desired_goal"])])
        target = state.copy()
        target[:, :2] = xy + ask * directions
        with torch.no_grad():
            action = invdyn(torch.from_numpy(state), torch.from_numpy(target)).numpy()
        obs, _, terminated, _, _ = envs.step(action)
        arrived = np.asarray(terminated, dtype=bool) & ~done
        arrival[arrived] = t + 1
        done |= arrived
        if done.all():
            break
    envs.close()
    # Failures never ended, so their last observation is their own (not a reset's).
    flipped = flipped_mask(np.asarray(obs["observation"]))
    gap = np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"], axis=1)
    return {"env": env_name, "ask_m": ask, "episodes": episodes,
            "seeds": [seed, seed + episodes - 1], "success_rate": float(done.mean()),
            "arrival_steps": sorted(arrival[done].tolist()),
            "failures": [{"seed": seed + int(i), "flipped": bool(flipped[i]),
                          "goal_distance_m": round(float(gap[i]), 2)}
                         for i in np.flatnonzero(~done)]}


def main() -> None:
    from ctp.models.builder import load_invdyn
    from ctp.tasks.antmaze.spec import get_spec
    from ctp.utils.atomic import write_json
    from ctp.utils.errors import CTPError

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--invdyn", required=True, help="inverse-dynamics checkpoint (x, y targets)")
    p.add_argument("--env", default="antmaze-medium-play")
    p.add_argument("--ask", type=float, default=2.0, help="target distance, m")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--out", default="")
    args = p.parse_args()
    torch.set_num_threads(1)
    try:
        get_spec(args.env)
        if not (args.ask > 0 and args.episodes >= 1):
            raise CTPError(f"--ask {args.ask} / --episodes {args.episodes}: expected a distance "
                           "> 0 m and at least 1 episode")
        invdyn, _, _ = load_invdyn(args.invdyn)
    except CTPError as exc:
        raise SystemExit(f"antmaze_acting: error: {exc}") from None
    if invdyn.target_dims != 2:
        raise SystemExit(f"antmaze_acting: error: {args.invdyn}: expected inverse dynamics "
                         f"reading x, y targets (--target-dims 2), got {invdyn.target_dims}")
    result = walk(invdyn, args.env, args.ask, args.episodes, args.seed, progress=True)
    result.update(invdyn=args.invdyn, k=invdyn.stride, reach_m=invdyn.reach)
    print(f"{args.env}: k {invdyn.stride}, reach {invdyn.reach:.2f} m, ask {args.ask} m: "
          f"success {result['success_rate']:.2f} over {args.episodes} episodes; median arrival "
          f"{np.median(result['arrival_steps']) if result['arrival_steps'] else 'n/a'}")
    if args.out:
        write_json(Path(args.out), result)


if __name__ == "__main__":
    main()
