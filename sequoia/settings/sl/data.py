"""Image-classification data for the SL branch: scikit-learn's digits or any HF dataset."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sequoia.batching import Batch
from sequoia.errors import SequoiaError
from sequoia.locations import is_local_path


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


def _load_hf_images(source: str) -> LabelledImages:
    import datasets

    path = Path(source)
    if is_local_path(source) and not path.expanduser().exists():
        raise SequoiaError(f"dataset path not found: {source}")
    try:
        if path.is_dir() and any((path / f).exists() for f in ("dataset_dict.json", "state.json")):
            loaded = datasets.load_from_disk(str(path))
        elif path.is_dir():
            loaded = datasets.load_dataset(str(path))
        elif path.is_file():
            builder = _FILE_BUILDERS.get(path.suffix)
            if builder is None:
                raise SequoiaError(f"cannot read dataset file {source}: expected one of {', '.join(_FILE_BUILDERS)}")
            loaded = datasets.load_dataset(builder, data_files=str(path))
        else:
            loaded = datasets.load_dataset(source)
    except SequoiaError:
        raise
    except Exception as error:  # noqa: BLE001 - datasets raises many types; all mean "cannot load"
        if path.exists():
            raise SequoiaError(f"could not read dataset {source}: {type(error).__name__}: {error}") from error
        raise SequoiaError(
            f"could not load dataset {source!r} from the Hugging Face hub ({type(error).__name__}); "
            "if you are offline, pass a local path (a save_to_disk directory, an image folder or a data file)"
        ) from error

    if isinstance(loaded, datasets.DatasetDict):
        train = loaded["train"] if "train" in loaded else loaded[next(iter(loaded))]
        test = loaded["test"] if "test" in loaded else None
    else:
        train, test = loaded, None
    image_column, label_column = _find_columns(train, source)
    x_train, y_train = _to_arrays(train, image_column, label_column)
    x_test, y_test = _to_arrays(test, image_column, label_column) if test is not None else (None, None)
    return LabelledImages(x_train, y_train, x_test, y_test)


def _find_columns(dataset, source: str) -> tuple[str, str]:
    import datasets

    image = next((n for n, f in dataset.features.items() if isinstance(f, datasets.Image)), None)
    image = image or next((n for n in ("image", "img", "pixel_values", "pixels") if n in dataset.features), None)
    label = next((n for n, f in dataset.features.items() if isinstance(f, datasets.ClassLabel)), None)
    label = label or next((n for n in ("label", "labels", "target") if n in dataset.features), None)
    if image is None or label is None:
        raise SequoiaError(
            f"dataset {source} needs an image column and a label column; it has: {', '.join(dataset.features)}"
        )
    return image, label


def _to_arrays(dataset, image_column: str, label_column: str) -> tuple[np.ndarray, np.ndarray]:
    images = [np.asarray(image, dtype=np.float32) for image in dataset[image_column]]
    if len({image.shape for image in images}) > 1:
        raise SequoiaError(f"images of different sizes in column {image_column!r}; resize them first")
    x = np.stack(images)
    if x.max() > 1.0:
        x = x / 255.0
    return x, np.asarray(dataset[label_column], dtype=np.int64)
