"""Attention maps computed on the training device from each crop and its φ/2 context equal the maps the
loader computed on the whole image and cropped (issue: training throughput, item 1)."""

from __future__ import annotations

import warnings

import pytest
import torch

from gmaiqa.data.datamodule import FocusStackDataset, collate_group
from gmaiqa.data.dataset import load_dataset
from gmaiqa.data.sampling import SampleKey
from gmaiqa.data.transforms import Preprocess, build_augment, context_crop, maps_from_context, with_attention
from gmaiqa.focus.gradient import attention_map, to_gray, zscore

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind,block", [("local_max", (8, 8)), ("local_max", (7, 10)), ("tenengrad", (8, 8))])
def test_crop_with_context_equals_whole_image_then_crop(kind, block, device):
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(1, 3, 40, 56, generator=g)
    whole = attention_map(rgb, kind, block)[0]
    gray = zscore(to_gray(rgb))[0]
    preprocess = Preprocess(None, kind, block)
    margin = preprocess.margin
    # corners, borders and the middle: the context beyond the image is what the whole map saw there
    for box in [
        (0, 0, 16, 24),
        (24, 32, 16, 24),
        (0, 20, 16, 24),
        (12, 0, 20, 30),
        (5, 7, 30, 40),
        (0, 0, 40, 56),
    ]:
        top, left, h, w = box
        batch = {
            "attention_context": context_crop(gray, box, margin, kind)[None].to(device),
            "attention_spec": (kind, block, margin),
            "flips": torch.zeros(1, 3, dtype=torch.long),
        }
        got = maps_from_context(batch)[0].cpu()
        torch.testing.assert_close(got, whole[:, top : top + h, left : left + w], rtol=1e-6, atol=1e-6)


def _items(dataset: FocusStackDataset, group: int, seed: int) -> dict:
    keys = [SampleKey(group, i, seed, i) for i in range(3)]
    return collate_group([dataset[k] for k in keys])


@pytest.mark.parametrize("crop,flips", [((32, 48), False), ((48, 48), True), (None, False)])
def test_the_dataset_gives_the_same_images_and_maps_either_way(tiny_feces, crop, flips):
    stacks = load_dataset(tiny_feces, validate="headers")
    preprocess = Preprocess((64, 96), "local_max", (8, 8))
    augment = build_augment(flips=flips, rot90=flips, square=crop is not None and crop[0] == crop[1])
    loader = FocusStackDataset(stacks, preprocess, crop, random_crop=crop is not None, augment=augment)
    device = FocusStackDataset(
        stacks, preprocess, crop, random_crop=crop is not None, augment=augment, maps_on_device=True
    )
    turned = 0
    for seed in range(6):  # several draws: flips, quarter turns and crops at the border all happen
        group = seed % len(stacks)
        on_cpu, on_device = _items(loader, group, seed), with_attention(_items(device, group, seed))
        assert "attention_context" not in on_device
        torch.testing.assert_close(on_device["image"], on_cpu["image"], rtol=0, atol=0)
        torch.testing.assert_close(on_device["attention"], on_cpu["attention"], rtol=1e-6, atol=1e-6)
        turned += int(_items(device, 0, seed)["flips"][0].sum() > 0)
    assert turned > 0 or not flips


def test_a_short_training_run_learns_the_same_with_either_path(tiny_feces, tmp_path):
    from gmaiqa.train import train
    from helpers.tiny import compose_train, tiny_overrides

    states = {}
    for on_device in (True, False):
        overrides = tiny_overrides(tiny_feces, tmp_path / str(on_device)) + [
            f"data.maps_on_device={str(on_device).lower()}",
            "data.flips=true",
            "logger=none",
            "evaluate=false",
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary = train(compose_train("gmanet_l1_direct", overrides))
        states[on_device] = torch.load(summary["checkpoint"], map_location="cpu", weights_only=False)[
            "state_dict"
        ]
    # the two runs start from the same seed: the same weights after training mean the same losses
    assert states[True].keys() == states[False].keys()
    for name, value in states[True].items():
        torch.testing.assert_close(value, states[False][name], rtol=1e-4, atol=1e-5, msg=name)
