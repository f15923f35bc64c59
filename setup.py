"""Build script: the package layout and the C++17 ranking extension `ctp._ranking`.

Metadata lives in pyproject.toml. `kernels/` is installed as the subpackage `ctp.kernels`.
The extension needs only pybind11 headers (no torch headers), so it builds on any machine
with a C++17 compiler. Where the `ninja` executable is installed it drives the compile and
link (parallel, incremental); otherwise setuptools compiles as usual.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import Extension, find_packages, setup


class NinjaBuildExt(build_ext):
    """pybind11's build_ext, with the compile and link steps run by ninja when available."""

    def build_extension(self, ext: Extension) -> None:
        ninja = shutil.which("ninja")
        if ninja is None or self.compiler.compiler_type != "unix":
            super().build_extension(ext)
            return
        cxx = getattr(self.compiler, "compiler_so_cxx", None) or self.compiler.compiler_so
        link = getattr(self.compiler, "linker_so_cxx", None) or self.compiler.linker_so
        includes = [f"-I{d}" for d in [*ext.include_dirs, *self.compiler.include_dirs]]
        macros = [f"-D{name}" if value is None else f"-D{name}={value}"
                  for name, value in ext.define_macros]
        cflags = [*cxx[1:], *macros, *includes, *ext.extra_compile_args]
        lflags = [*link[1:], *ext.extra_link_args]
        build_dir = os.path.abspath(os.path.join(self.build_temp, ext.name))
        os.makedirs(build_dir, exist_ok=True)
        output = os.path.abspath(self.get_ext_fullpath(ext.name))
        os.makedirs(os.path.dirname(output), exist_ok=True)
        objects = [os.path.join(build_dir, os.path.basename(src) + ".o") for src in ext.sources]
        lines = [
            f"cxx = {cxx[0]}",
            f"cflags = {shlex.join(cflags)}",
            f"link = {link[0]}",
            f"lflags = {shlex.join(lflags)}",
            "rule compile",
            "  command = $cxx -MMD -MF $out.d $cflags -c $in -o $out",
            "  depfile = $out.d",
            "  deps = gcc",
            "rule link",
            "  command = $link $in $lflags -o $out",
        ]
        for src, obj in zip(ext.sources, objects):
            lines.append(f"build {obj}: compile {os.path.abspath(src)}")
        lines.append(f"build {output}: link {' '.join(objects)}")
        with open(os.path.join(build_dir, "build.ninja"), "w") as fh:
            fh.write("\n".join(lines) + "\n")
        subprocess.run([ninja, "-C", build_dir], check=True)


setup(
    packages=find_packages(include=["ctp", "ctp.*"]) + ["ctp.kernels"],
    package_dir={"ctp": "ctp", "ctp.kernels": "kernels"},
    package_data={"ctp": ["assets/*.pt", "assets/*.json", "assets/behaviour/*.pt"]},
    ext_modules=[
        Pybind11Extension("ctp._ranking", ["csrc/ranking.cpp"], cxx_std=17,
                          extra_compile_args=["-O3"])
    ],
    cmdclass={"build_ext": NinjaBuildExt},
    zip_safe=False,
)
