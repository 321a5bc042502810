"""Seconds per GMANet training step on this machine, in fp32 and under bf16 autocast: the figure behind
``trainer.precision=auto`` (``gmaiqa.trainer_settings.resolve_precision``).

bf16 autocast halves a step's time on a CPU that runs bf16 natively (AVX512-BF16 or AMX) and on a GPU
with bf16; on a CPU without it (AVX2 only) PyTorch emulates bf16 and the same step takes many times
longer. One step as the default-model recipes take it: batch 7 (clearest + 6 neighbours) of 128x192
crops, the three outputs, their sum's backward and an Adam update, L0 (no mask attention); the paper's
aggregation and head widths (512/256), and the light recipes' (128/128; ``--widths``).

    uv run python benchmarks/bench_train_step.py [--trunks mobilenet_v3_large,vgg16_bn] [--repeats N]
        [--widths 512/256,128/128] [--teacher default]

``--teacher``: also time a ranking-distillation teacher's forward pass on the same batch
(``task.distill.teacher``, ``gmaiqa.tasks.distillation``: no gradient, with the attention maps its mask
attention reads) in fp32 and under bf16 autocast, as a distilled step runs it under each
``trainer.precision``: the cost it adds to every step, as a ratio to the row's step in the same precision.

Prints a table and writes ``benchmarks/results/bench_train_step.json`` with the CPU's capability and
whether it runs bf16 natively. Times are best-of-N wall clock after one warm-up step.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_of, report  # noqa: E402

from gmaiqa.models import build_gmanet  # noqa: E402
from gmaiqa.tasks.distillation import DistillSettings, Teacher  # noqa: E402
from gmaiqa.trainer_settings import native_bf16  # noqa: E402


def train_step(net: torch.nn.Module, optimizer, batch: torch.Tensor, bf16: bool) -> None:
    with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=bf16):
        outputs = net(batch)
        loss = sum(value.float().mean() for value in outputs.values() if torch.is_tensor(value))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def teacher_scores(teacher: Teacher, image: torch.Tensor, attention: torch.Tensor, bf16: bool) -> None:
    with torch.autocast(image.device.type, dtype=torch.bfloat16, enabled=bf16):
        teacher.scores(image, attention)


def _recorded_meta(teacher: str) -> dict:
    # here, not at import: the checkpoint reader loads the exported runtimes
    from gmaiqa.checkpoints import META_KEY, read_checkpoint

    return read_checkpoint(teacher, "--teacher")[META_KEY]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trunks", default="mobilenet_v3_large,vgg16_bn")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--crop", type=int, nargs=2, default=(128, 192))
    parser.add_argument("--batch", type=int, default=7)
    parser.add_argument("--widths", default="512/256,128/128", help="aggregation/head channels, a,b,...")
    parser.add_argument("--teacher", default=None, help="a task.distill.teacher to time too (e.g. default)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_train_step.json"))
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    widths = [tuple(int(n) for n in pair.split("/")) for pair in args.widths.split(",")]
    teacher_s = None
    if args.teacher:
        # the teacher's own record stands in for the student's: this times it, not its fit
        teacher = Teacher.load(DistillSettings(args.teacher, 1.0), student_meta=_recorded_meta(args.teacher))
        image = torch.randn(args.batch, 3, *args.crop, device=device)
        attention = torch.rand(args.batch, 1, *args.crop, device=device)
        teacher_s = {
            precision: best_of(
                lambda: teacher_scores(teacher, image, attention, precision == "bf16"), args.repeats
            )
            for precision in ("fp32", "bf16")
        }
    for trunk in args.trunks.split(","):
        for aggregation, head in widths:
            torch.manual_seed(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                net = build_gmanet(
                    backbone=trunk,
                    mask_attention_depth=0,
                    aggregation_channels=aggregation,
                    head_channels=head,
                )
            net = net.to(device).train()
            optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
            batch = torch.randn(args.batch, 3, *args.crop, device=device)
            seconds = {
                precision: best_of(
                    lambda: train_step(net, optimizer, batch, precision == "bf16"), args.repeats
                )
                for precision in ("fp32", "bf16")
            }
            rows.append(
                {
                    "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
                    "native_bf16": native_bf16(device.type),
                    "trunk": trunk,
                    "widths": f"{aggregation}/{head}",
                    "batch": f"{args.batch}x{args.crop[0]}x{args.crop[1]}",
                    "fp32_s_per_step": seconds["fp32"],
                    "bf16_s_per_step": seconds["bf16"],
                    "bf16_over_fp32": seconds["bf16"] / seconds["fp32"],
                    **(
                        {
                            "teacher": args.teacher,
                            "teacher_fp32_s": teacher_s["fp32"],
                            "teacher_over_fp32_step": teacher_s["fp32"] / seconds["fp32"],
                            "teacher_bf16_s": teacher_s["bf16"],
                            "teacher_over_bf16_step": teacher_s["bf16"] / seconds["bf16"],
                        }
                        if teacher_s is not None
                        else {}
                    ),
                }
            )
    report("bench_train_step", rows, args.out)


if __name__ == "__main__":
    main()
