"""The release's per-call cost that the ``released`` mode reproduces for the speed reference.

The authors' pipeline keeps its text encoder and encodes the empty prompt on every call;
ours stores the embedding once. :class:`ReleasedPrompt` puts that work back, as a hook the
pipeline runs before encoding (``SharpDepthPipeline.before_encode``), so ``sharpdepth
speed`` measures our modes against the release's cost structure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sharpdepth.accel.profiling import stage


class ReleasedPrompt:
    """Encode the empty prompt with the checkpoint's text encoder on every call.

    Args:
        root: a released-layout checkpoint folder (with ``text_encoder/`` and
            ``tokenizer/``).
        device: where the text encoder runs.

    Raises:
        CheckpointError: the folder has no text encoder.
    """

    def __init__(self, root: Path, device: torch.device) -> None:
        from sharpdepth.models.checkpoints import load_text_encoder

        self.text_encoder, self.tokenizer = load_text_encoder(root)
        self.text_encoder.to(device)

    def __call__(self, model: Any) -> None:
        """Recompute ``model.prompt_embeds`` (of a ``DiffusionDepthModel``) as the release does."""
        from sharpdepth.models.checkpoints import compute_empty_prompt_embedding

        with stage("text encoder"):
            embeds = compute_empty_prompt_embedding(self.text_encoder, self.tokenizer)
        model.prompt_embeds = embeds.to(device=model.device, dtype=model.dtype)
