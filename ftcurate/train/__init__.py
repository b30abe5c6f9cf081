"""Qt-free training and evaluation: LoRA / QLoRA / DoRA adapters with transformers + peft.

Importing this package is cheap: torch, transformers and peft are imported only when a
model is loaded. The GUI's training window and ``ftcurate train`` / ``ftcurate evaluate``
call the same functions. See docs/training.md.
"""

from .config import METHODS, TrainConfig, help_text
from .data import (FALLBACK_CHAT_TEMPLATE, DataError, FallbackTemplateWarning, Rendered, TrainData, check_leakage,
                   load_data, render)
from .compare import CompareSettings, compare
from .evaluate import EvalError, evaluate, merge_adapter, save_report
from .model import (MemoryEstimate, ModelFolderCheck, check_model_folder, create_demo_model, detect_device,
                    estimate_memory, is_demo_model)
from .runfiles import RunSettings, load_run_config, load_run_settings, run_model_dir
from .runner import LeakageError, TrainError, TrainResult, last_checkpoint, read_metrics, train

__all__ = [
    "METHODS", "TrainConfig", "help_text",
    "FALLBACK_CHAT_TEMPLATE", "DataError", "FallbackTemplateWarning", "Rendered", "TrainData", "check_leakage",
    "load_data", "render",
    "CompareSettings", "compare", "EvalError", "evaluate", "merge_adapter", "save_report",
    "MemoryEstimate", "ModelFolderCheck", "check_model_folder", "create_demo_model", "detect_device",
    "estimate_memory", "is_demo_model",
    "RunSettings", "load_run_config", "load_run_settings", "run_model_dir",
    "LeakageError", "TrainError", "TrainResult", "last_checkpoint", "read_metrics", "train",
]
