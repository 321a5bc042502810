"""FocusStackDataModule: batches as GMANet consumes them."""

import numpy as np
import pytest
import torch

from gmaiqa.data.datamodule import FocusStackDataModule
from gmaiqa.data.transforms import with_attention
from gmaiqa.errors import ConfigError


def _dm(root, **kw):
    args = dict(
        root=str(root), resize=(64, 96), crop=(32, 48), block=(8, 8), batch_size=4, num_workers=0, seed=0
    )
    args.update(kw)
    return FocusStackDataModule(**args)


def _batches(loader):
    """Batches as the task sees them after transfer: the maps the loader left to the device computed."""
    for batch in loader:
        assert "attention_context" in batch and "attention" not in batch  # data.maps_on_device (default)
        yield with_attention(batch)


def test_training_batches(tiny_feces):
    dm = _dm(tiny_feces)
    dm.setup("fit")
    groups = {s.group for split in dm.splits.values() for s in split}
    assert len(groups) == 8 and sum(len(v) for v in dm.splits.values()) == 8
    for batch in _batches(dm.train_dataloader()):
        assert batch["image"].shape == (4, 3, 32, 48) and batch["attention"].shape == (4, 1, 32, 48)
        assert batch["clearest"] == 0 and batch["score"][0] == 100 and (batch["score"][1:] < 100).all()
        assert batch["image"].dtype == torch.float32 and torch.isfinite(batch["image"]).all()
        assert (batch["attention"] >= 0).all()


def test_same_crop_and_flip_for_the_whole_batch(tiny_feces):
    """Cropping and flipping one batch alike: the attention map of every image must equal the map of
    its own uncropped image, cut at one common location."""
    dm = _dm(tiny_feces, flips=True)
    dm.setup("fit")
    batch = next(_batches(dm.train_dataloader()))
    full = _dm(tiny_feces, crop=None, flips=False)
    full.setup("fit")
    group = full.splits["train"][batch["group"]]
    from gmaiqa.data.io import read_image

    locations = set()
    for i, index in enumerate(batch["index"].tolist()):
        _, amap = full.preprocess(read_image(group.paths[index]))
        cut = batch["attention"][i, 0].numpy()
        found = None
        for flip in [(False, False), (True, False), (False, True), (True, True)]:
            m = amap[0].numpy()
            m = m[:, ::-1] if flip[0] else m
            m = m[::-1, :] if flip[1] else m
            for top in range(m.shape[0] - 31):
                for left in range(m.shape[1] - 47):
                    if np.allclose(m[top : top + 32, left : left + 48], cut):
                        found = (flip, top, left)
                        break
                if found:
                    break
            if found:
                break
        assert found is not None
        locations.add(found)
    assert len(locations) == 1


def test_validation_yields_whole_groups_in_capture_order(tiny_feces):
    dm = _dm(tiny_feces)
    dm.setup("fit")
    for batch, stack in zip(dm.val_dataloader(), dm.splits["val"]):
        assert batch["image"].shape[0] == len(stack) and batch["image"].shape[-2:] == (64, 96)
        assert batch["index"].tolist() == list(range(len(stack)))
        assert batch["clearest"] == stack.clearest
        assert torch.allclose(batch["z_um"], torch.from_numpy(stack.z_um))


def test_workers_do_not_change_batches(tiny_feces):
    dm0, dm2 = _dm(tiny_feces, num_workers=0), _dm(tiny_feces, num_workers=2)
    for dm in (dm0, dm2):
        dm.setup("fit")
    for b0, b2 in zip(dm0.train_dataloader(), dm2.train_dataloader()):
        assert torch.equal(b0["image"], b2["image"]) and torch.equal(b0["index"], b2["index"])


def test_tenengrad_attention_by_config(tiny_feces):
    dm = _dm(tiny_feces, attention="tenengrad")
    dm.setup("fit")
    assert next(_batches(dm.train_dataloader()))["attention"].shape == (4, 1, 32, 48)


def test_refuses_invalid_or_unlabelled_data(feces_copy):
    import csv

    from gmaiqa.data.report import DatasetError

    rows = list(csv.DictReader(open(feces_copy / "manifest.csv")))
    with open(feces_copy / "manifest.csv", "w", newline="") as handle:  # clearest flags only, no scores
        writer = csv.DictWriter(handle, ["group", "image", "z", "clearest"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(ConfigError, match="without scores"):
        _dm(feces_copy).setup("fit")
    (feces_copy / rows[0]["image"]).write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(DatasetError, match=rf"{rows[0]['image']}: .*(corrupt|truncated)"):
        _dm(feces_copy).setup("fit")
    with pytest.raises(ConfigError, match="data.root"):
        FocusStackDataModule()


def test_synthetic_data_is_generated_once_and_cached(tmp_path):
    spec = {
        "preset": "blood",
        "groups": 5,
        "height": 48,
        "width": 64,
        "images": [4, 5],
        "seed": 1,
        "workers": 1,
    }
    dm = FocusStackDataModule(
        synthetic=spec, cache_dir=str(tmp_path), resize=None, crop=(32, 32), block=(8, 8), num_workers=0
    )
    dm.prepare_data()
    manifest = dm.root / "manifest.csv"
    stamp = manifest.stat().st_mtime_ns
    FocusStackDataModule(synthetic=spec, cache_dir=str(tmp_path), num_workers=0).prepare_data()
    assert manifest.stat().st_mtime_ns == stamp
