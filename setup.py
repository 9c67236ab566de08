"""Only what pyproject.toml cannot say: the top-level weights/ folder installs as the zoo.weights
package, next to the packages setuptools finds under zoo/, so an installed zoo reads them offline."""

from setuptools import find_namespace_packages, setup

setup(
    packages=find_namespace_packages(include=["zoo", "zoo.*"]) + ["zoo.weights", "zoo.weights.labels"],
    package_dir={"zoo.weights": "weights"},
)
