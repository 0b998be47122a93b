"""Package discovery: the four code folders map into the single ``fc4dfs`` namespace."""
from setuptools import find_packages, setup

ROOTS = {"plugins": "fc4dfs.plugins", "datasets": "fc4dfs.datasets",
         "zoo": "fc4dfs.zoo", "benchmark": "fc4dfs.benchmark"}

packages: list[str] = []
package_dir: dict[str, str] = {}
for folder, namespace in ROOTS.items():
    packages.append(namespace)
    package_dir[namespace] = folder
    packages += [f"{namespace}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=package_dir)
