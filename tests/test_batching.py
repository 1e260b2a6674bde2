import torch

from sequoia.batching import batch_size, concat, take


def test_take_and_concat_handle_tensors_and_lists():
    batch = {"x": torch.arange(6).reshape(3, 2), "text": ["a", "b", "c"]}
    picked = take(batch, torch.tensor([2, 0]))
    assert picked["x"].tolist() == [[4, 5], [0, 1]]
    assert picked["text"] == ["c", "a"]
    merged = concat([batch, picked])
    assert batch_size(merged) == 5
    assert merged["text"] == ["a", "b", "c", "c", "a"]
