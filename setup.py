"""Build script for s3gw's optional native extensions (metadata lives in pyproject.toml).

The Cython sources in ``_native/`` compile to ``s3gw._native.<name>``.  Set
``S3GW_NO_EXTENSIONS=1`` to build without a compiler; a failed compile also
falls back, with a warning, and s3gw then runs on its pure-Python twin
(``s3gw version`` says which implementation is in use).
"""

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

NATIVE_MODULES = ["chunker", "hashing", "sqlbatch"]
# libraries a module links against (sqlbatch: the system libsqlite3, the one
# Python's own sqlite3 module uses)
NATIVE_LIBRARIES = {"sqlbatch": ["sqlite3"]}


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing: the pure-Python twin takes over."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - compiler missing, Cython missing, ...
            self._warn(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 - one extension failing: its twin takes over
            self._warn(exc)

    @staticmethod
    def _warn(exc):
        sys.stderr.write(
            f"WARNING: s3gw native extension not built ({exc}); "
            "the pure-Python implementation will be used.\n")


def native_extensions():
    if os.environ.get("S3GW_NO_EXTENSIONS") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        sys.stderr.write("WARNING: Cython not available; building without native extensions.\n")
        return []
    from setuptools import Extension
    extensions = [
        Extension(
            f"s3gw._native.{name}",
            [f"_native/{name}.pyx"],
            extra_compile_args=["-O3"],
            libraries=NATIVE_LIBRARIES.get(name, []),
        )
        for name in NATIVE_MODULES
    ]
    return cythonize(extensions, language_level=3, compiler_directives={
        "boundscheck": False, "wraparound": False, "cdivision": True})


setup(ext_modules=native_extensions(), cmdclass={"build_ext": OptionalBuildExt})
