"""Builds tenflower._C with CMake for `pip install --no-build-isolation .` (offline).

The extension is the CMake target tfw_python (python/src/*.c plus the library's objects),
built in a private build directory with the interpreter that runs pip, then copied where
setuptools expects it. TFW_CMAKE_BUILD_DIR=<dir> reuses an existing configured build tree
(e.g. build/) instead of configuring a new one; TFW_BUILD_JOBS sets the parallelism.
"""
import os
import shutil
import subprocess
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = os.environ.get("TFW_CMAKE_BUILD_DIR")
        if not build_dir:
            build_dir = os.path.join(os.path.abspath(self.build_temp), "cmake")
            os.makedirs(build_dir, exist_ok=True)
            subprocess.check_call([
                "cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
                f"-DTFW_PYTHON={sys.executable}", "-DTFW_BUILD_TESTS=OFF", "-DTFW_BUILD_BENCH=OFF",
                "-DTFW_BUILD_EXAMPLES=OFF",
            ] + (["-G", "Ninja"] if shutil.which("ninja") else []))
        jobs = os.environ.get("TFW_BUILD_JOBS", str(os.cpu_count() or 2))
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "tfw_python", "-j", jobs])
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        built = os.path.join(build_dir, "python", "tenflower", "_C" + suffix)
        if not os.path.exists(built):
            raise RuntimeError(f"tenflower: the CMake build did not produce {built}")
        dest = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(built, dest)


setup(
    ext_modules=[Extension("tenflower._C", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
)
