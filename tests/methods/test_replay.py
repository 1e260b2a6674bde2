import torch

from sequoia.batching import batch_size
from sequoia.learners import Classifier
from sequoia.learners.base import Learner
from sequoia.methods.naive import Naive
from sequoia.methods.replay import Replay, ReplayPlugin, ReservoirBuffer
from sequoia.settings.sl import IncrementalSLSetting


def test_reservoir_keeps_a_uniform_sample_of_the_stream():
    counts = torch.zeros(1000)
    for trial in range(200):
        buffer = ReservoirBuffer(capacity=100, generator=torch.Generator().manual_seed(trial))
        for start in range(0, 1000, 250):  # offered in several batches, like successive tasks
            buffer.add({"x": torch.arange(start, start + 250)})
        assert len(buffer) == 100 and buffer.seen == 1000
        kept = torch.cat([row["x"] for row in buffer.rows])
        assert len(kept.unique()) == 100
        counts[kept] += 1
    # Each item is kept with probability 0.1: early and late quarters alike.
    quarters = counts.reshape(4, 250).mean(dim=1) / 200
    assert torch.allclose(quarters, torch.full((4,), 0.1), atol=0.01), quarters


def test_plugin_adds_the_replay_share_of_memory_rows():
    buffer = ReservoirBuffer(capacity=10, generator=torch.Generator().manual_seed(0))
    plugin = ReplayPlugin(buffer, replay_share=0.25)
    batch = {"x": torch.zeros(12, 2), "y": torch.zeros(12, dtype=torch.long)}
    assert plugin.adapt_batch(Learner(), batch) is batch  # empty memory: unchanged
    buffer.add({"x": torch.ones(10, 2), "y": torch.ones(10, dtype=torch.long)})
    mixed = plugin.adapt_batch(Learner(), batch)
    assert batch_size(mixed) == 16  # 4 / 16 = 0.25 from memory
    assert mixed["y"].sum() == 4


def test_replay_reduces_forgetting_in_class_incremental_digits():
    naive = IncrementalSLSetting().apply(Naive(), progress=False)
    replay = IncrementalSLSetting().apply(Replay(buffer_size=200), progress=False)
    assert naive.matrix.average_forgetting() > 0.8  # naive forgets almost everything
    assert replay.matrix.average_forgetting() < naive.matrix.average_forgetting() - 0.5
    assert replay.matrix.average_final() > naive.matrix.average_final() + 0.4


def test_replay_wraps_any_learner_instance():
    method = Replay(buffer_size=50).use_learner(Classifier(hidden_size=16, epochs=2))
    IncrementalSLSetting(nb_tasks=2).apply(method, progress=False)
    assert method.base_learner.hidden_size == 16 and len(method.buffer) == 50
