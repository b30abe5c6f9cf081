"""Qt-free training and evaluation (transformers + peft). Filled in by the training issue."""
