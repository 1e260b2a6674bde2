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


GOOD = [[0.0, 1.0], [1.0, 0.0]]
BAD_ROWS = {
    "a float label": ({"label": 1.5}, "row 2: label float 1.5 in column 'label' is not a class number"),
    "a label past the largest class": ({"label": 10**9}, "row 2: label int 1000000000 in column 'label' is not a"),
    "a null label": ({"label": None}, "row 2: label NoneType None"),
    "a null image": ({"image": None}, "row 2: column 'image' holds NoneType None; expected an image"),
    "a ragged image": ({"image": [[0, 1], [1]]}, "row 2: column 'image' holds list [[0.0, 1.0], [1.0]]"),
    "an image of another size": ({"image": [[0.0, 1.0, 0.5]]}, "row 2: an image of shape (1, 3), but row 1's is (2, 2)"),
    "an infinite pixel": ({"image": [[0.0, float("inf")], [1.0, 0.0]]}, "row 2: pixel values must be finite"),
}


@pytest.mark.parametrize("change,message", BAD_ROWS.values(), ids=list(BAD_ROWS))
def test_a_bad_row_is_one_line_naming_it(change, message, tmp_path):
    # Saved to disk, so each bad value reaches sequoia as datasets stores it (JSON cannot hold every case).
    rows = [{"image": GOOD, "label": 0}, {"image": GOOD, "label": 1} | change, {"image": GOOD, "label": 1}]
    datasets.Dataset.from_list(rows).save_to_disk(tmp_path / "ds")
    with pytest.raises(SequoiaError) as error:
        load_images(str(tmp_path / "ds"))
    assert f"dataset {tmp_path / 'ds'} [train], {message}" in str(error.value)
    assert "\n" not in str(error.value)


def test_numbers_for_images_are_refused(tmp_path):
    datasets.Dataset.from_dict({"image": [3.0, 4.0], "label": [0, 1]}).save_to_disk(tmp_path / "ds")
    with pytest.raises(SequoiaError, match="row 1: column 'image' holds float 3.0; expected an image"):
        load_images(str(tmp_path / "ds"))


def test_test_images_of_another_size_are_refused(tmp_path):
    train = datasets.Dataset.from_dict({"image": [GOOD] * 2, "label": [0, 1]})
    test = datasets.Dataset.from_dict({"image": [[[0.5] * 3] * 3] * 2, "label": [0, 1]})
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(tmp_path / "ds")
    with pytest.raises(SequoiaError, match=r"test images are \(3, 3\), train images \(2, 2\)"):
        load_images(str(tmp_path / "ds"))


@pytest.mark.parametrize("damage,message", [
    (lambda ds: (ds / "state.json").write_text("[1, 2]"), "state.json must hold a JSON object, not a list"),
    (lambda ds: (ds / "dataset_info.json").write_bytes(b"\xff"), "dataset_info.json is not UTF-8 text"),
    (lambda ds: [shard.unlink() for shard in ds.glob("*.arrow")], "cannot be loaded as a saved dataset "
                                                                  r"\(FileNotFoundError"),
])
def test_a_damaged_saved_dataset_is_one_line(damage, message, tmp_path):
    datasets.Dataset.from_dict({"image": [GOOD] * 2, "label": [0, 1]}).save_to_disk(tmp_path / "ds")
    damage(tmp_path / "ds")
    with pytest.raises(SequoiaError, match=message):
        load_images(str(tmp_path / "ds"))


def test_an_image_folder_with_a_file_that_is_no_image_is_one_line(tmp_path):
    for label in ("cat", "dog"):
        (tmp_path / "images" / label).mkdir(parents=True)
        (tmp_path / "images" / label / "a.png").write_text("not a picture")
    with pytest.raises(SequoiaError, match=r"\[train\]: column 'image' cannot be read \(UnidentifiedImageError"):
        load_images(str(tmp_path / "images"))


def test_an_empty_or_non_utf8_data_file_is_one_line(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    with pytest.raises(SequoiaError, match="dataset file .*empty.jsonl is empty"):
        load_images(str(tmp_path / "empty.jsonl"))
    (tmp_path / "latin1.csv").write_bytes(b"image,label\ncaf\xe9,1\n")
    with pytest.raises(SequoiaError, match=r"dataset file .*latin1.csv is not UTF-8 text \(byte 15 cannot"):
        load_images(str(tmp_path / "latin1.csv"))
