"""`python -m vqa_jax.finetune`: the paper's fine-tuning protocol (the program: `vqa_jax.training.finetune`)."""

from vqa_jax.training import finetune

if __name__ == "__main__":
  finetune.main()
