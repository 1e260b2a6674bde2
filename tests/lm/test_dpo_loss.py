"""Our DPO losses and gradients against TRL's DPOTrainer on the same model, batch and beta."""

import pytest
import torch

from sequoia.lm.dpo_loss import dpo_loss
from sequoia.lm.models import byte_tokenizer, tiny_random_model
from sequoia.lm.packing import Group
from sequoia.lm.scoring import ReplyScorer

trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")
peft = pytest.importorskip("peft")

ROWS = [
    {"prompt": "Is the sky blue?", "chosen": " Yes, on a clear day.", "rejected": " No."},
    {"prompt": "2 + 2 =", "chosen": " 4", "rejected": " 5, I think"},
    {"prompt": "Name a fruit:", "chosen": " apple", "rejected": " a chair"},
    {"prompt": "Be kind.", "chosen": " I will try.", "rejected": " Never!"},
]


def trl_trainer(loss_type, tmp_path):
    config = trl.DPOConfig(output_dir=str(tmp_path), beta=0.1, loss_type=[loss_type], label_smoothing=0.2 if
                           loss_type == "robust" else 0.0, per_device_train_batch_size=4, use_cpu=True,
                           report_to=[], max_length=None, seed=0)
    lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0,
                           task_type="CAUSAL_LM")
    return trl.DPOTrainer(model=tiny_random_model(), args=config, train_dataset=datasets.Dataset.from_list(ROWS),
                          processing_class=byte_tokenizer(), peft_config=lora)


def rows_from_trl_batch(batch):
    """Recover (prompt, chosen, rejected) token lists from TRL's right-padded [chosen; rejected] batch."""
    ids, attention, completion = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    n = len(ids) // 2

    def split(row):
        prompt = ids[row][(attention[row] == 1) & (completion[row] == 0)].tolist()
        return prompt, ids[row][completion[row] == 1].tolist()

    prompts, chosen, rejected = [], [], []
    for i in range(n):
        prompt, c = split(i)
        prompt_r, r = split(i + n)
        assert prompt == prompt_r
        prompts.append(prompt)
        chosen.append(c)
        rejected.append(r)
    return prompts, chosen, rejected


def trainer_free_loss(loss_type):
    """The loss when the policy equals the reference (delta = 0), which a vacuous test would see."""
    zero = torch.zeros(1)
    return dpo_loss(zero, zero, zero, zero, beta=0.1, loss_type=loss_type, label_smoothing=0.2 if
                    loss_type == "robust" else 0.0, chosen_tokens=torch.ones(1), rejected_tokens=torch.ones(1)).item()


def scored(model, prompts, chosen, rejected, pad):
    """Summed log-probs of the chosen then the rejected replies, and their lengths, as the dpo_lora learner
    scores them: each prompt once, the pairs packed into one row, the head applied chunk by chunk."""
    scorer = ReplyScorer(model, pad)
    scores = scorer.score([Group(p, [c, r]) for p, c, r in zip(prompts, chosen, rejected)])
    assert scorer.mode == "packed"
    n = len(prompts)
    order = torch.cat([torch.arange(0, 2 * n, 2), torch.arange(1, 2 * n, 2)])
    return scores.logprobs[order], scores.tokens[order]


def lora_grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge", "robust"])
def test_loss_and_gradients_match_trl(loss_type, tmp_path):
    trainer = trl_trainer(loss_type, tmp_path)
    model = trainer.model
    with torch.no_grad():  # LoRA B starts at zero (policy == reference); move it so the test has signal
        generator = torch.Generator().manual_seed(0)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 4.0)
    model.train()
    batch = next(iter(trainer.get_train_dataloader()))
    batch = {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    model.zero_grad()
    trl_loss = trainer.compute_loss(model, batch)
    trl_loss.backward()
    trl_grads = lora_grads(model)

    prompts, chosen, rejected = rows_from_trl_batch(batch)
    pad = trainer.processing_class.pad_token_id
    model.zero_grad()
    with torch.no_grad(), model.disable_adapter():
        ref, _ = scored(model, prompts, chosen, rejected, pad)
    policy, tokens = scored(model, prompts, chosen, rejected, pad)
    n = len(prompts)
    ours = dpo_loss(policy[:n], policy[n:], ref[:n], ref[n:], beta=0.1, loss_type=loss_type,
                    label_smoothing=0.2 if loss_type == "robust" else 0.0,
                    chosen_tokens=tokens[:n], rejected_tokens=tokens[n:]).mean()
    ours.backward()
    our_grads = lora_grads(model)

    assert abs(ours.item() - trl_loss.item()) < 1e-5, (ours.item(), trl_loss.item())
    assert (policy - ref).abs().max() > 0.05  # the policy differs from the reference: a real check
    assert ours.item() != pytest.approx(trainer_free_loss(loss_type), abs=1e-4)
    for name, grad in trl_grads.items():
        torch.testing.assert_close(our_grads[name], grad, atol=1e-5, rtol=1e-4)


def test_policy_equal_to_reference_gives_log_2():
    zero = torch.zeros(3)
    torch.testing.assert_close(dpo_loss(zero, zero, zero, zero, beta=0.5), torch.full((3,), 0.6931), atol=1e-4,
                               rtol=0)


def test_unknown_loss_and_bad_smoothing():
    zero = torch.zeros(1)
    with pytest.raises(ValueError, match="unknown DPO loss"):
        dpo_loss(zero, zero, zero, zero, beta=0.1, loss_type="kto")
    with pytest.raises(ValueError, match="label_smoothing"):
        dpo_loss(zero, zero, zero, zero, beta=0.1, loss_type="robust", label_smoothing=0.5)
    with pytest.raises(ValueError, match="token counts"):
        dpo_loss(zero, zero, zero, zero, beta=0.1, loss_type="ipo")
