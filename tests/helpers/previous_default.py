"""The VGG16-BN that shipped as gmaiqa's default model until the MobileNetV3 replaced it (issue 32).
The repository keeps its weights file (the distill recipe's teacher, where the VGG16-BN fine-tune
recipes can start), and the default-scorer tables keep the rows it was measured with as ``ckpt:default``
under a trial's label: the vote and tilt tables' ``ckpt:default`` is this model."""

from pathlib import Path

WEIGHTS = "experiments/default-model/candidates/vgg16bn_ft_stack.pt"  # from the checkout root
WEIGHTS_FILE = Path(__file__).resolve().parents[2] / WEIGHTS
ROWS = "trial:vgg16bn_ft_stack"
