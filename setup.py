"""Maps the top-level folders onto the one `duplex` import namespace.

`duplex/` is the sans-I/O core; `models/`, `server/`, `clients/` and
`recipes/` install as `duplex.models`, `duplex.server`, ... (works with
`pip install -e .`). Everything else lives in pyproject.toml.
"""
from setuptools import find_packages, setup

ROOTS = {
    "duplex": "duplex",
    "duplex.models": "models",
    "duplex.server": "server",
    "duplex.clients": "clients",
    "duplex.recipes": "recipes",
}
EXCLUDE = set(ROOTS.values())

packages, package_dir = [], {}
for name, folder in ROOTS.items():
    package_dir[name] = folder
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder) if sub.split(".")[0] not in EXCLUDE]

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={
        "duplex.clients": ["web/*", "web/**/*"],
        "duplex.models": ["assets/*", "assets/**/*"],
        "duplex.recipes": ["**/*.json", "**/*.md", "**/*.txt", "**/*.jsonl"],
    },
    include_package_data=True,
)
