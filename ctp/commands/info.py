"""``ctp info``: versions, devices and which accelerated paths are active."""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform

PACKAGES = ("torch", "triton", "minari", "gymnasium", "gymnasium-robotics", "mujoco", "numpy")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="print versions, devices and active backends")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect() -> dict[str, object]:
    """The facts ``ctp info`` reports, as a JSON-serialisable dict."""
    import torch

    from ctp import __version__
    from ctp.kernels import active_backend

    ranking_built = importlib.util.find_spec("ctp._ranking") is not None
    return {
        "ctp": __version__,
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in PACKAGES},
        "cuda_available": torch.cuda.is_available(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
        "ranking_extension": "built" if ranking_built else "missing",
        "kernel_backend": active_backend(),
    }


def run(args: argparse.Namespace) -> int:
    report = collect()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"ctp {report['ctp']} (python {report['python']})")
    for name, version in report["versions"].items():  # type: ignore[union-attr]
        print(f"  {name:<20} {version or 'not installed'}")
    cuda = f"yes ({report['cuda_device']})" if report["cuda_available"] else "no"
    print(f"  {'cuda available':<20} {cuda}")
    print(f"  {'torch threads':<20} {report['torch_threads']}")
    print(f"  {'ctp._ranking':<20} {report['ranking_extension']}")
    print(f"  {'kernel backend':<20} {report['kernel_backend']}")
    return 0
