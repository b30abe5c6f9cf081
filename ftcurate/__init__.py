"""ftcurate: curate fine-tuning datasets and train LoRA adapters on them."""

__version__ = "0.1.0"
