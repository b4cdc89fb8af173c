"""Builds the healthtable package: its Python files and the extension,
compiled from the C++ library's own sources (../lib/src) and the binding
(src/), the same lists CMake builds (../lib/sources.cmake,
sources.cmake). Needs Debian's g++, libboost-dev, pybind11-dev and
python3-dev; nothing from PyPI:

    python3 -m venv /opt/gateway/venv
    /opt/gateway/venv/bin/pip install --no-build-isolation ./python
"""

from __future__ import annotations

import os
import re
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def cmake_list(path: str, var: str) -> list:
    """The files of `set(var ...)` in a sources.cmake, as absolute paths."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"set\(\s*%s\s+([^)]*)\)" % re.escape(var), text)
    if not m:
        sys.exit("setup.py: no set(%s ...) in %s" % (var, path))
    base = os.path.dirname(path)
    return [os.path.join(base, s) for s in m.group(1).split() if not s.startswith("#")]


def pybind11_include() -> str:
    for d in ("/usr/include", "/usr/local/include"):
        if os.path.exists(os.path.join(d, "pybind11", "pybind11.h")):
            return d
    sys.exit("setup.py: pybind11 headers not found; install Debian's pybind11-dev")


class ParallelBuildExt(build_ext):
    """Compiles every source, in parallel, one job per core. Always all of
    them: setuptools compares only a .cpp's time with its object's, so an
    edited header would otherwise leave stale objects from an earlier
    in-tree build (pip builds ./python in place, in python/build)."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.force = True
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1


if not os.path.exists(os.path.join(ROOT, "lib", "sources.cmake")):
    sys.exit("setup.py: ../lib/sources.cmake is missing; install from a checkout of "
             "healthtable (pip install ./python from the repository's root)")

extension = Extension(
    "healthtable._healthtable",
    sources=cmake_list(os.path.join(HERE, "sources.cmake"), "healthtable_python_sources")
    + cmake_list(os.path.join(ROOT, "lib", "sources.cmake"), "healthtable_sources"),
    include_dirs=[os.path.join(ROOT, "lib", "include"), pybind11_include()],
    language="c++",
    extra_compile_args=["-std=c++20", "-O2", "-fvisibility=hidden"],
    libraries=["rt", "pthread"],
)

setup(
    name="healthtable",
    version="0.1.0",
    description="Lock-free provider health table in POSIX shared memory, for Python",
    packages=["healthtable"],
    package_data={"healthtable": ["*.pyi", "py.typed"]},
    ext_modules=[extension],
    cmdclass={"build_ext": ParallelBuildExt},
    python_requires=">=3.9",
)
