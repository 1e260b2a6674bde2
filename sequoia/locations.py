"""Telling local paths from Hugging Face hub names, so a typo in a path gets a path error."""

from pathlib import Path


def is_local_path(spec: str) -> bool:
    """Whether ``spec`` can only mean a local file or directory (a hub id is ``name`` or ``owner/name``).

    Example:
        >>> is_local_path("ylecun/mnist"), is_local_path("./mnist"), is_local_path("data/a/b"), is_local_path("x.jsonl")
        (False, True, True, True)
    """
    return (spec.startswith((".", "/", "~")) or spec.count("/") >= 2 or "\\" in spec
            or Path(spec).suffix in (".json", ".jsonl", ".parquet", ".csv", ".yaml", ".yml", ".gguf"))
