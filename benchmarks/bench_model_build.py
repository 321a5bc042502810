"""Seconds to build each trunk's GMANet at random init, and to load the shipped model (``ckpt=default``:
what ``predict``, ``eval`` and ``autofocus`` spend before their first image).

    uv run python benchmarks/bench_model_build.py [--repeats N] [--out FILE.json]

``torchvision vgg16_bn`` is torchvision's whole classifier at its random init, the network gmaiqa built
VGG16-BN's trunk from until it left the classifier's 123 M weights on the meta device
(``gmaiqa.models.backbones``); the rows marked ``(classifier built)`` time that older path again, in the
same run, by building VGG16-BN with torchvision's builder. ``x_torchvision`` is the first row's time
over each row's.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torchvision

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_of, report  # noqa: E402

from gmaiqa.checkpoints import load_net  # noqa: E402
from gmaiqa.default_model import default_model_path  # noqa: E402
from gmaiqa.models import backbones, build_gmanet  # noqa: E402
from gmaiqa.models.gmanet import TRUNKS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/bench_model_build.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*random init.*")
    cases = {"torchvision vgg16_bn": lambda: torchvision.models.vgg16_bn(weights=None)}
    cases |= {f"gmanet {name}": (lambda name=name: build_gmanet(backbone=name)) for name in TRUNKS}
    cases["load ckpt=default"] = lambda: load_net(default_model_path())
    seconds = {label: best_of(build, repeats=args.repeats) for label, build in cases.items()}
    skipping_the_classifier = dict(backbones._RANDOM_INIT)
    backbones._RANDOM_INIT.clear()
    try:
        seconds["gmanet vgg16_bn (classifier built)"] = best_of(
            lambda: build_gmanet(backbone="vgg16_bn"), repeats=args.repeats
        )
        seconds["load ckpt=default (classifier built)"] = best_of(
            lambda: load_net(default_model_path()), repeats=args.repeats
        )
    finally:
        backbones._RANDOM_INIT.update(skipping_the_classifier)
    reference = seconds["torchvision vgg16_bn"]
    rows = [
        {"what": label, "s": round(s, 3), "x_torchvision": round(reference / s, 1)}
        for label, s in seconds.items()
    ]
    report("model_build", rows, args.out)


if __name__ == "__main__":
    main()
