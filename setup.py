"""Package discovery by pattern, so a new subpackage can never be left out of `pip install .`.

Everything else is in pyproject.toml. setuptools' `packages.find` cannot rename a folder, and the
repository's top-level `configs/` is installed as `vqa_jax.configs`, so both finds live here.
"""

import setuptools

LIBRARY = setuptools.find_packages(include=["vqa_jax", "vqa_jax.*"])
CONFIGS = ["vqa_jax." + name for name in setuptools.find_packages(include=["configs", "configs.*"])]

setuptools.setup(packages=LIBRARY + CONFIGS, package_dir={"vqa_jax.configs": "configs"})
