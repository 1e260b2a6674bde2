"""Language-model utilities for the preference-alignment branch: loading, tokenizing, log-probs, DPO losses.

Nothing here is imported by ``import sequoia``; transformers and peft load only when a
PA setting or method runs.
"""
