"""Our DPO losses and gradients against TRL's DPOTrainer on the same model, batch and beta."""

from typing import get_args

import pytest
import torch
import torch.nn.functional as F

from sequoia.lm.dpo_loss import LOSSES, LossType, dpo_loss, register_loss
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
    config = trl.DPOConfig(output_dir=str(tmp_path), beta=0.1, loss_type=[loss_type],
                           label_smoothing=smoothing_for(loss_type), per_device_train_batch_size=4, use_cpu=True,
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
    return dpo_loss(zero, zero, zero, zero, beta=0.1, loss_type=loss_type, label_smoothing=smoothing_for(loss_type),
                    chosen_tokens=torch.ones(1), rejected_tokens=torch.ones(1)).item()


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


TRL_LOSSES = [name for name in get_args(LossType) if name != "cal_dpo"]


def smoothing_for(loss_type: str) -> float:
    return {"robust": 0.2, "exo_pair": 1e-3, "aot": 0.1, "aot_unpaired": 0.1}.get(loss_type, 0.0)


@pytest.fixture(scope="module")
def trl_batch(tmp_path_factory):
    """One TRL trainer and batch for every loss; the LoRA B weights moved off zero so policy != reference."""
    trainer = trl_trainer("sigmoid", tmp_path_factory.mktemp("trl"))
    model = trainer.model
    with torch.no_grad():  # LoRA B starts at zero (policy == reference); move it so the test has signal
        generator = torch.Generator().manual_seed(0)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 4.0)
    model.train()
    batch = next(iter(trainer.get_train_dataloader()))
    batch = {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    return trainer, batch


def test_every_loss_type_is_registered_once():
    assert set(get_args(LossType)) == set(LOSSES)
    assert len(TRL_LOSSES) == 14


@pytest.mark.parametrize("loss_type", TRL_LOSSES)
def test_loss_and_gradients_match_trl(loss_type, trl_batch):
    trainer, batch = trl_batch
    trainer.loss_types, trainer.loss_weights = [loss_type], [1.0]
    trainer.label_smoothing = smoothing_for(loss_type)
    model = trainer.model

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
                    label_smoothing=smoothing_for(loss_type), discopop_tau=trainer.args.discopop_tau,
                    chosen_tokens=tokens[:n], rejected_tokens=tokens[n:]).mean()
    ours.backward()
    our_grads = lora_grads(model)

    assert abs(ours.item() - trl_loss.item()) < 1e-5 * max(1.0, abs(trl_loss.item())), (ours.item(), trl_loss.item())
    assert (policy - ref).abs().max() > 0.05  # the policy differs from the reference: a real check
    assert ours.item() != pytest.approx(trainer_free_loss(loss_type), abs=1e-4)
    assert any(grad.abs().max() > 0 for grad in trl_grads.values())
    for name, grad in trl_grads.items():
        torch.testing.assert_close(our_grads[name], grad, atol=1e-5, rtol=1e-4)


def cal_dpo_as_the_authors_write_it(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    """The batch loss of github.com/tengxiao1/Cal-DPO (loss_type "Cal-DPO"): its mse_loss calls, targets spelled out."""
    chosen_rewards, rejected_rewards = policy_chosen - ref_chosen, policy_rejected - ref_rejected
    contrastive = -F.logsigmoid(chosen_rewards - rejected_rewards)
    calibration = (F.mse_loss(chosen_rewards, torch.full_like(chosen_rewards, 1.0 / (2.0 * beta)))
                   + F.mse_loss(rejected_rewards, torch.full_like(rejected_rewards, -1.0 / (2.0 * beta))))
    return (contrastive + 0.5 * calibration).mean()


def test_cal_dpo_matches_the_authors_loss_and_gradient():
    generator = torch.Generator().manual_seed(1)
    tensors = [(torch.randn(6, generator=generator) * 3).requires_grad_() for _ in range(4)]
    theirs = cal_dpo_as_the_authors_write_it(*tensors, beta=0.1)
    their_grads = torch.autograd.grad(theirs, tensors)
    ours = dpo_loss(*tensors, beta=0.1, loss_type="cal_dpo").mean()
    our_grads = torch.autograd.grad(ours, tensors)
    torch.testing.assert_close(ours, theirs)
    for mine, reference in zip(our_grads, their_grads):
        torch.testing.assert_close(mine, reference)
    # Calibration: unlike DPO's, its minimum is not at any margin but at rewards +-1/(2 beta).
    at_target = dpo_loss(torch.tensor([5.0]), torch.tensor([-5.0]), torch.zeros(1), torch.zeros(1), beta=0.1,
                         loss_type="cal_dpo")
    shifted = dpo_loss(torch.tensor([25.0]), torch.tensor([15.0]), torch.zeros(1), torch.zeros(1), beta=0.1,
                       loss_type="cal_dpo")
    assert shifted > at_target + 100
    assert dpo_loss(torch.tensor([25.0]), torch.tensor([15.0]), torch.zeros(1), torch.zeros(1),
                    beta=0.1) == pytest.approx(dpo_loss(torch.tensor([5.0]), torch.tensor([-5.0]), torch.zeros(1),
                                                        torch.zeros(1), beta=0.1))


def test_a_second_loss_of_the_same_name_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_loss("ipo")(lambda scores, options: scores.delta)
    assert LOSSES["ipo"].__name__ == "_ipo"


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
    with pytest.raises(ValueError, match="exo_pair loss needs 0 < label_smoothing"):
        dpo_loss(zero, zero, zero, zero, beta=0.1, loss_type="exo_pair")
