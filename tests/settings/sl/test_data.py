"""Loading image-classification data from local HF datasets, files and (offline) the hub."""

import numpy as np
import pytest

from sequoia.errors import SequoiaError
from sequoia.settings.sl import IncrementalSLSetting
from sequoia.settings.sl.data import load_images

datasets = pytest.importorskip("datasets")


def tiny_image_dataset(n_per_class=6, classes=4, size=5, seed=0):
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(classes):
        for _ in range(n_per_class):
            image = rng.integers(0, 50, (size, size), dtype=np.uint8)
            image[label] = 255  # one bright row per class: learnable
            images.append(image)
            labels.append(label)
    features = datasets.Features({"image": datasets.Image(),
                                  "label": datasets.ClassLabel(num_classes=classes)})
    return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)


def test_save_to_disk_directory_with_train_and_test_splits(tmp_path):
    dd = datasets.DatasetDict({"train": tiny_image_dataset(), "test": tiny_image_dataset(2, seed=1)})
    dd.save_to_disk(tmp_path / "ds")
    images = load_images(str(tmp_path / "ds"))
    assert images.x_train.shape == (24, 5, 5) and images.x_test.shape == (8, 5, 5)
    assert images.x_train.max() <= 1.0 and sorted(set(images.y_train)) == [0, 1, 2, 3]


def test_single_split_directory_is_split_by_the_setting(tmp_path):
    tiny_image_dataset(10).save_to_disk(tmp_path / "single")
    setting = IncrementalSLSetting(dataset=str(tmp_path / "single"), nb_tasks=2)
    from sequoia.methods.naive import Naive

    results = setting.apply(Naive(), progress=False)
    assert results.matrix.values.shape == (3, 2)
    assert results.matrix.values[1, 0] > 0.5  # the bright-row classes are learnable


def test_parquet_file(tmp_path):
    path = tmp_path / "data.parquet"
    tiny_image_dataset().to_parquet(str(path))
    images = load_images(str(path))
    assert images.x_train.shape == (24, 5, 5) and images.x_test is None


def test_missing_columns_are_named(tmp_path):
    datasets.Dataset.from_dict({"pixels_x": [[0, 1]], "y": [0]}).save_to_disk(tmp_path / "bad")
    with pytest.raises(SequoiaError, match="needs an image column and a label column; it has: pixels_x, y"):
        load_images(str(tmp_path / "bad"))


def test_unreachable_hub_gives_one_line_with_the_fix():
    with pytest.raises(SequoiaError) as error:
        load_images("someone/not-a-cached-dataset")
    message = str(error.value)
    assert "Hugging Face hub" in message and "pass a local path" in message and "\n" not in message


def test_unknown_file_type(tmp_path):
    path = tmp_path / "images.txt"
    path.write_text("nope")
    with pytest.raises(SequoiaError, match="expected one of"):
        load_images(str(path))
