"""Build script: the package layout and the C++17 ranking extension `ctp._ranking`.

Metadata lives in pyproject.toml. `kernels/` is installed as the subpackage `ctp.kernels`.
The extension needs only pybind11 headers (no torch headers), so it builds on any machine
with a C++17 compiler; ninja parallelises the build where it is installed.
"""

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import find_packages, setup

ParallelCompile("CTP_BUILD_JOBS", default=0).install()

packages = find_packages(include=["ctp", "ctp.*"]) + ["ctp.kernels"]

setup(
    packages=packages,
    package_dir={"ctp": "ctp", "ctp.kernels": "kernels"},
    package_data={"ctp": ["assets/*.pt", "assets/*.json"]},
    ext_modules=[
        Pybind11Extension(
            "ctp._ranking",
            ["csrc/ranking.cpp"],
            cxx_std=17,
            extra_compile_args=["-O3"],
        )
    ],
    cmdclass={"build_ext": build_ext},
    zip_safe=False,
)
