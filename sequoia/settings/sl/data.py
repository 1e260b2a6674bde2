"""Image-classification data for the SL branch: scikit-learn's digits or any HF dataset."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sequoia import hf_datasets
from sequoia.batching import Batch
from sequoia.errors import SequoiaError, summary
from sequoia.locations import is_local_path
from sequoia.text_files import check_utf8


@dataclass
class SupervisedData:
    """Inputs, labels and (where the setting reveals them) task ids of one chunk of data.

    Example:
        >>> d = SupervisedData(torch.zeros(3, 8, 8), torch.tensor([0, 1, 1]))
        >>> len(d), d.task_ids is None
        (3, True)
    """

    x: torch.Tensor
    y: torch.Tensor
    task_ids: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)

    def as_batch(self) -> Batch:
        """The rows as a batch dictionary ``{"x", "y"}``."""
        return {"x": self.x, "y": self.y}


@dataclass
class LabelledImages:
    """A whole dataset: train and test images as float arrays in [0, 1], integer labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None

    @property
    def classes(self) -> np.ndarray:
        return np.unique(self.y_train)


@functools.lru_cache(maxsize=4)
def load_images(source: str) -> LabelledImages:
    """Load ``digits`` (scikit-learn's bundled 8x8 digits), a HF hub name, or a local path.

    A local path may be a ``save_to_disk`` directory, an image folder, or a data file
    (csv, json, jsonl, parquet). Test splits are used where the dataset has one.
    """
    if source == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return LabelledImages(digits.images.astype(np.float32) / 16.0, digits.target.astype(np.int64), None, None)
    return _load_hf_images(source)


_FILE_BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
MAX_CLASSES = 100_000
"""Labels run from 0 to ``MAX_CLASSES - 1``: the classifier's head has ``max(label) + 1`` outputs."""


def _load_hf_images(source: str) -> LabelledImages:
    import datasets

    loaded = _read_dataset(source)
    if isinstance(loaded, datasets.DatasetDict):
        train_split = "train" if "train" in loaded else next(iter(loaded))
        train, test = loaded[train_split], loaded["test"] if "test" in loaded else None
    else:
        train_split, train, test = "train", loaded, None
    image_column, label_column = _find_columns(train, source)
    x_train, y_train = _to_arrays(train, image_column, label_column, f"dataset {source} [{train_split}]")
    if test is None:
        return LabelledImages(x_train, y_train, None, None)
    x_test, y_test = _to_arrays(test, image_column, label_column, f"dataset {source} [test]")
    if x_test.shape[1:] != x_train.shape[1:]:
        raise SequoiaError(f"dataset {source}: test images are {x_test.shape[1:]}, train images "
                           f"{x_train.shape[1:]}; resize them to one size first")
    return LabelledImages(x_train, y_train, x_test, y_test)


def _read_dataset(source: str):
    """The dataset ``source`` names, as ``datasets`` loads it; every failure one line."""
    import datasets

    if not source.strip():
        raise SequoiaError("--setting.dataset is empty; expected digits, a hub name or a local path")
    path = Path(source).expanduser()
    if is_local_path(source) and not path.exists():
        raise SequoiaError(f"dataset path not found: {source}")
    if hf_datasets.is_saved(path):
        return hf_datasets.load_saved(path, "dataset")
    if path.is_file():
        _check_data_file(path, source)
    try:
        with hf_datasets.quiet():
            if path.is_dir():
                return datasets.load_dataset(str(path))
            if path.is_file():
                return datasets.load_dataset(_FILE_BUILDERS[path.suffix], data_files=str(path))
            return datasets.load_dataset(source)
    except Exception as error:  # noqa: BLE001 - datasets raises many types; all mean "cannot load"
        if path.exists():
            raise SequoiaError(f"could not read dataset {source}: {summary(error)}") from None
        raise SequoiaError(
            f"could not load dataset {source!r} from the Hugging Face hub ({type(error).__name__}); "
            "if you are offline, pass a local path (a save_to_disk directory, an image folder or a data file)"
        ) from None


def _check_data_file(path: Path, source: str) -> None:
    """A data file of a known format, not empty, and (where it is text) UTF-8."""
    if path.suffix not in _FILE_BUILDERS:
        raise SequoiaError(f"cannot read dataset file {source}: expected one of {', '.join(_FILE_BUILDERS)}")
    if path.stat().st_size == 0:
        raise SequoiaError(f"dataset file {source} is empty")
    if path.suffix != ".parquet":
        check_utf8(path, "dataset file")


def _find_columns(dataset, source: str) -> tuple[str, str]:
    import datasets

    image = _column_named(dataset.features, datasets.Image, ("image", "img", "pixel_values", "pixels"))
    label = _column_named(dataset.features, datasets.ClassLabel, ("label", "labels", "target"))
    if image is None or label is None:
        raise SequoiaError(
            f"dataset {source} needs an image column and a label column; it has: {', '.join(dataset.features)}"
        )
    return image, label


def _column_named(features: dict, feature_type: type, usual_names: tuple[str, ...]) -> str | None:
    """The first column of ``feature_type``, else the first with one of the usual names."""
    typed = [name for name, feature in features.items() if isinstance(feature, feature_type)]
    return next(iter(typed + [name for name in usual_names if name in features]), None)


def _to_arrays(dataset, image_column: str, label_column: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Images as one float array scaled to [0, 1], labels as int64; a bad row is one line naming it."""
    if len(dataset) == 0:
        raise SequoiaError(f"{where} has no rows")
    labels = _labels(_column(dataset, label_column, where), label_column, where)
    images = [_image(value, row, image_column, where)
              for row, value in enumerate(_column(dataset, image_column, where), start=1)]
    shape = images[0].shape
    odd = next((row for row, image in enumerate(images, start=1) if image.shape != shape), None)
    if odd is not None:
        raise SequoiaError(f"{where}, row {odd}: an image of shape {images[odd - 1].shape}, but row 1's is {shape}; "
                           "resize the images to one size first")
    x = np.stack(images)
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if not finite.all():
        raise SequoiaError(f"{where}, row {int(np.argmin(finite)) + 1}: pixel values must be finite numbers "
                           "(found NaN or infinity)")
    if x.max() > 1.0:
        x = x / 255.0
    return x, labels


def _column(dataset, column: str, where: str) -> list:
    try:
        return list(dataset[column])  # a lazy column in datasets 4: images decode while it is listed
    except Exception as error:  # noqa: BLE001 - decoding images can fail in PIL in many ways
        raise SequoiaError(f"{where}: column {column!r} cannot be read ({summary(error)})") from None


def _image(value, row: int, column: str, where: str) -> np.ndarray:
    try:
        image = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        image = None
    if image is None or image.ndim == 0 or image.size == 0:
        raise SequoiaError(f"{where}, row {row}: column {column!r} holds {_describe(value)}; "
                           "expected an image (a picture, or a nested list of numbers of one shape)")
    return image


def _labels(values: list, column: str, where: str) -> np.ndarray:
    """Integer class labels from 0 to ``MAX_CLASSES - 1``."""
    array = np.asarray(values)
    if array.dtype.kind in "iu" and array.ndim == 1 and len(array) and 0 <= array.min() and array.max() < MAX_CLASSES:
        return array.astype(np.int64)
    for row, value in enumerate(values, start=1):
        if not _is_class_number(value):
            raise SequoiaError(f"{where}, row {row}: label {_describe(value)} in column {column!r} is not a class "
                               f"number; expected an integer from 0 to {MAX_CLASSES - 1}{_label_hint(value)}")
    return np.asarray(values, dtype=np.int64)


def _is_class_number(value) -> bool:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return float(value).is_integer() and 0 <= value < MAX_CLASSES


def _label_hint(value) -> str:
    if isinstance(value, str):
        return " (to use text labels, encode them first: datasets' Dataset.class_encode_column)"
    if value == -1:
        return " (-1 marks an unlabelled row in Hugging Face datasets; drop those rows)"
    return ""


def _describe(value) -> str:
    """A short account of a bad value for a message: its type, and its text when short."""
    text = repr(value)
    return f"{type(value).__name__} {text}" if len(text) <= 40 else f"a {type(value).__name__}"
