"""Build MuJoCo envs whose models compile in the calling thread (no compiler thread).

MuJoCo 4's compiler starts a worker thread for every model it loads (``mjCModel::CompileTree``'s
thread pool; MJCF ``<compiler usethread="true"/>``, the default). When that thread cannot
start (no memory left to commit its stack at that moment), ``std::system_error`` is thrown
inside ``libmujoco``, whose private copy of the C++ runtime makes the exception a type the
Python binding does not know, and ``MjModel.from_xml_path`` raises ``RuntimeError: Caught an
unknown exception!`` for as long as threads cannot start. Compiled with ``usethread`` off, the
model is the same one, byte for byte, and no thread is needed.

Gymnasium's and Gymnasium-Robotics' envs build their model with ``MjModel.from_xml_path``
inside their constructors, so :func:`models_compiled_in_this_thread` swaps that one function
for the duration of an env's construction and puts MuJoCo's own back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def compile_without_thread(filename: Any) -> Any:
    """``MjModel`` of the MJCF file ``filename``, compiled with ``usethread`` off. MuJoCo's
    notice that an attribute of the file is deprecated (Gymnasium's ``half_cheetah.xml``:
    ``settotalmass``), a Python warning on this path, is not shown: nothing a user can act on."""
    import warnings

    import mujoco

    spec = mujoco.MjSpec.from_file(str(filename))
    spec.compiler.usethread = False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="compiler attribute .* is deprecated")
        return spec.compile()


@contextmanager
def models_compiled_in_this_thread() -> Iterator[None]:
    """Inside the block, ``mujoco.MjModel.from_xml_path(path)`` compiles without a worker
    thread (:func:`compile_without_thread`); calls with ``assets`` or a VFS go to MuJoCo's own.
    Env construction is single-threaded in ctp, so the swap is seen only by the env built."""
    import mujoco

    entry = mujoco.MjModel.__dict__["from_xml_path"]  # put back as it was
    threaded = mujoco.MjModel.from_xml_path

    def from_xml_path(filename: Any, assets: Any = None, vfs: Any = None) -> Any:
        if assets is not None or vfs is not None:
            return threaded(filename, assets, vfs)
        return compile_without_thread(filename)

    mujoco.MjModel.from_xml_path = staticmethod(from_xml_path)
    try:
        yield
    finally:
        mujoco.MjModel.from_xml_path = entry
