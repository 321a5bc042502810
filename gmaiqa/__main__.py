"""``python -m gmaiqa ...``: the ``gmaiqa`` command where the package is on the path but not installed
(a checkout copied to a machine without uv or network, as experiments/default-model/gpu.sh runs it)."""

from gmaiqa.cli import entry

entry()
