"""Autofocus: reach focus with few acquisitions (issue 35). A stage protocol a real microscope driver
implements in a few lines (``stage.py``), stages to search without one (``stages.py``: the synthetic
renderer at any z, a recorded stack played back; ``mmcore.py``: Micro-Manager's core), search strategies
that stop on a tolerance or a budget and say when a curve is flat or has two peaks (``search.py``), any
scorer gmaiqa has (``scorers.py``), and the ``gmaiqa autofocus`` command that judges them against the
known truth (``run.py``)."""

from gmaiqa.autofocus.search import STRATEGIES, Result, search
from gmaiqa.autofocus.stage import BudgetSpent, Meter, Probe, Stage

__all__ = ["STRATEGIES", "BudgetSpent", "Meter", "Probe", "Result", "Stage", "search"]
