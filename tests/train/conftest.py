"""Fine-tuning tests run on CPU with one thread, offline; each module skips itself without the
'train' extra (torch, transformers, peft)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

try:
    import torch
except ModuleNotFoundError:  # the modules' importorskip reports it
    pass
else:
    torch.set_num_threads(1)
