"""Checkpoint resolution, loading and saving of the diffusion depth model.

Folders in the diffusers layout, local or on the Hugging Face Hub:

* the authors' released SharpDepth checkpoint and Lotus-G depth checkpoints
  (``model_index.json`` + ``unet/ vae/ scheduler/ text_encoder/ tokenizer/``),
* Marigold-style checkpoints (v- or epsilon-prediction UNets, no class label),
* our own layout, which ships ``prompt_embeds.safetensors`` instead of the text
  encoder and a ``sharpdepth_config.json``,
* ``"nano"``, the bundled nano family (package data).

:func:`load_components` reads what :class:`~sharpdepth.models.diffusion.DiffusionDepthModel`
is built from; :func:`write_checkpoint` writes our layout.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from sharpdepth.errors import CheckpointError
from sharpdepth.io import atomic_write_folder
from sharpdepth.weights import check_safetensors, loading_errors, read_json_object

LOGGER = logging.getLogger(__name__)

PROMPT_EMBEDS_FILE = "prompt_embeds.safetensors"
PROMPT_EMBEDS_KEY = "empty_prompt_embeds"
CONFIG_FILE = "sharpdepth_config.json"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HUB_PATTERNS = [
    "model_index.json",
    CONFIG_FILE,
    PROMPT_EMBEDS_FILE,
    "unet/*.json",
    "unet/*.safetensors",
    "vae/*.json",
    "vae/*.safetensors",
    "scheduler/*",
    "text_encoder/*.json",
    "text_encoder/*.safetensors",
    "tokenizer/*",
]
_HUB_IGNORE = ["*.fp16.*", "*non_ema*", "*.ckpt"]


def resolve_checkpoint(name_or_path: str | os.PathLike[str], revision: str | None = None) -> Path:
    """A local folder for a checkpoint given as a folder path or a Hugging Face Hub id.

    Hub ids are fetched (or taken from the local cache, e.g. with
    ``HF_HUB_OFFLINE=1``) with :func:`huggingface_hub.snapshot_download`, safetensors
    weights only.

    The name ``"nano"`` is the bundled nano SharpDepth checkpoint (package data).

    Raises:
        CheckpointError: the folder does not exist and the id cannot be fetched.
    """
    local, fetched = _local_folder(
        name_or_path, revision, "sharpdepth", _HUB_PATTERNS, "checkpoint", "unet/ and vae/"
    )
    for sub in ("unet", "vae", "text_encoder") if fetched else ():
        folder = local / sub
        if folder.is_dir() and not any(folder.glob("*.safetensors")):
            local = _snapshot(str(name_or_path), revision, [f"{sub}/*.bin"])  # pickles only
    return local


def _local_folder(
    name_or_path: str | os.PathLike[str],
    revision: str | None,
    bundled: str,
    patterns: list[str],
    what: str,
    expected: str,
) -> tuple[Path, bool]:
    """The folder of a model named by ``"nano"``, a local path or a Hub id.

    Args:
        name_or_path: ``"nano"`` (the bundled nano model ``bundled``), a folder, or a
            Hugging Face Hub id (files matching ``patterns`` are fetched).
        revision: Hub revision.
        bundled: the bundled nano model's name (see :func:`sharpdepth.assets.bundled_dir`).
        patterns: what to fetch from the Hub.
        what: the model's description in error messages.
        expected: what the folder should hold, for the error on a file.

    Returns:
        The folder, and whether it was fetched from the Hub (or its cache).

    Raises:
        CheckpointError: bundled model missing, a file, or not found anywhere.
    """
    from sharpdepth.assets import NANO_CHECKPOINT, bundled_available, bundled_dir

    if str(name_or_path) == NANO_CHECKPOINT:
        if not bundled_available(bundled):
            raise CheckpointError(
                f"the bundled nano {what} is missing from {bundled_dir(bundled)} "
                "(was the package installed without its data files?)"
            )
        return bundled_dir(bundled), False
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(
                f"{what} {str(name_or_path)!r} is a file; expected a folder with {expected}"
            )
        return path, False
    return _snapshot(str(name_or_path), revision, patterns), True


def _snapshot(name: str, revision: str | None, patterns: list[str]) -> Path:
    """A Hub repository's files matching ``patterns``, fetched or from the local cache.

    Raises:
        CheckpointError: ``name`` is not a Hub id, or fetching failed.
    """
    if not _HUB_ID.match(name) or name.startswith((".", "/", "~")):
        raise CheckpointError(f"checkpoint {name!r} not found (no such folder)")
    try:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(
                name, revision=revision, allow_patterns=patterns, ignore_patterns=_HUB_IGNORE
            )
        )
    except Exception as exc:  # network, auth, missing repo: all mean "cannot get it"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {name!r}: no such local folder, and fetching it from the Hugging Face "
            f"Hub failed ({type(exc).__name__}: {reason})"
        ) from exc


def is_tiny_vae(vae: Any) -> bool:
    """Whether ``vae`` is a TAESD-style ``diffusers.AutoencoderTiny``."""
    from diffusers import AutoencoderTiny

    return isinstance(vae, AutoencoderTiny)


def load_tiny_vae(
    name_or_path: str | os.PathLike[str],
    torch_dtype: torch.dtype = torch.float32,
    revision: str | None = None,
) -> Any:
    """A TAESD-style tiny autoencoder (``diffusers.AutoencoderTiny``) for fast inference.

    It replaces the checkpoint's autoencoder in every encode and decode: its latents are
    the big autoencoder's *scaled* latents, so it must have been trained (distilled) for
    the same latent space, e.g. ``madebyollin/taesd`` for SD-2-based checkpoints (Lotus-G,
    SharpDepth) or the nano family's own (``sharpdepth nano train tiny-vae``). At 768 px
    on a 2-core CPU it encodes in about 1.5 s and decodes in 1.7 s, against 12 s and 26 s
    for SD-2's autoencoder; what it does to the depth is measured in ``docs/speed.md``.

    Args:
        name_or_path: a folder with ``config.json`` and the weights (or with them in
            ``vae/``), a Hugging Face Hub id, or ``"nano"`` (the bundled nano family's).
        torch_dtype: dtype of the weights.
        revision: Hub revision.

    Raises:
        CheckpointError: not found, or not an ``AutoencoderTiny``.
    """
    from diffusers import AutoencoderTiny

    patterns = ["config.json", "*.safetensors", "vae/config.json", "vae/*.safetensors"]
    root, _ = _local_folder(
        name_or_path, revision, "tiny-vae", patterns, "tiny autoencoder", "config.json"
    )
    sub = "" if (root / "config.json").is_file() else "vae"
    config_file = root / sub / "config.json"
    if not config_file.is_file():
        raise CheckpointError(
            f"tiny autoencoder {str(root)!r}: no config.json (or vae/config.json)"
        )
    class_name = _read_json(config_file).get("_class_name")
    if class_name != AutoencoderTiny.__name__:
        raise CheckpointError(
            f"{config_file} describes a {class_name}, not an AutoencoderTiny (TAESD) autoencoder"
        )
    with loading_errors(f"tiny autoencoder {str(root)!r}"):
        return _load_component(AutoencoderTiny, root, sub, torch_dtype)


def _read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object, turning any problem into a :class:`CheckpointError` naming it."""
    return read_json_object(path)


def compute_empty_prompt_embedding(text_encoder: Any, tokenizer: Any) -> torch.Tensor:
    """Encode the empty prompt once, as the released pipelines do (no padding).

    Args:
        text_encoder: a transformers text encoder (e.g. ``CLIPTextModel``).
        tokenizer: its tokenizer.

    Returns:
        ``[1, L, D]`` float32 embedding (L = 2 for CLIP: start and end tokens).
    """
    tokens = tokenizer(
        "",
        padding="do_not_pad",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    device = next(text_encoder.parameters()).device
    with torch.no_grad():
        out = text_encoder(tokens.input_ids.to(device))[0]
    return out.float().cpu()


def _load_text_embedding(root: Path) -> torch.Tensor:
    """The empty-prompt embedding from ``prompt_embeds.safetensors`` or text encoder + tokenizer."""
    stored = root / PROMPT_EMBEDS_FILE
    if stored.is_file():
        check_safetensors(stored)
        with loading_errors(str(stored)):
            tensors = load_file(str(stored))
        if PROMPT_EMBEDS_KEY not in tensors:
            raise CheckpointError(f"{stored}: no tensor named {PROMPT_EMBEDS_KEY!r}")
        return tensors[PROMPT_EMBEDS_KEY].float()
    LOGGER.info("computing the empty-prompt embedding from %s/text_encoder", root)
    text_encoder, tokenizer = load_text_encoder(root)
    embedding = compute_empty_prompt_embedding(text_encoder, tokenizer)
    del text_encoder  # only the cached embedding is kept
    return embedding


def load_text_encoder(root: Path) -> tuple[Any, Any]:
    """``(text_encoder, tokenizer)`` of a released-layout checkpoint folder (float32).

    Raises:
        CheckpointError: the folder has no ``text_encoder/`` and ``tokenizer/``.
    """
    if not ((root / "text_encoder").is_dir() and (root / "tokenizer").is_dir()):
        raise CheckpointError(
            f"{root}: needs either {PROMPT_EMBEDS_FILE} or text_encoder/ and tokenizer/ "
            "to build the empty-prompt embedding"
        )
    from transformers import AutoModel, AutoTokenizer

    for path in (root / "text_encoder").glob("*.safetensors"):
        check_safetensors(path)
    with loading_errors(f"text encoder of checkpoint {str(root)!r}"):
        tokenizer = AutoTokenizer.from_pretrained(root / "tokenizer")
        text_encoder = AutoModel.from_pretrained(root / "text_encoder").eval()
    return text_encoder, tokenizer


def _default_prediction_type(root: Path, model_index: Mapping[str, Any]) -> str:
    """Which parametrisation the UNet's output has, from the checkpoint's metadata.

    Our own config wins; Marigold checkpoints use their scheduler's
    ``prediction_type``; Lotus-G and SharpDepth checkpoints predict x0 ("sample")
    whatever their scheduler config says (the released code uses the output as x0).
    """
    cfg_file = root / CONFIG_FILE
    if cfg_file.is_file():
        value = _read_json(cfg_file).get("prediction_type")
        if value:
            return str(value)
    class_name = str(model_index.get("_class_name", ""))
    if "marigold" in class_name.lower():
        sched = root / "scheduler" / "scheduler_config.json"
        if sched.is_file():
            return str(_read_json(sched).get("prediction_type", "epsilon"))
        return "epsilon"
    return "sample"


_SAFETENSORS_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def _weight_files(folder: Path) -> list[Path] | None:
    """The safetensors files of a diffusers model folder (one, or the shards of an index)."""
    single = folder / "diffusion_pytorch_model.safetensors"
    if single.is_file():
        return [single]
    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    if index.is_file():
        weight_map = _read_json(index).get("weight_map", {})
        names = weight_map.values() if isinstance(weight_map, dict) else [None]
        if not all(isinstance(n, str) and n and Path(n).name == n for n in names):
            raise CheckpointError(f"{index}: weight_map must name files in {folder}")
        return [folder / name for name in sorted(set(names))] or None
    return None


def weight_bytes(folder: Path) -> int:
    """Size (bytes) of the safetensors weights of a diffusers model folder (0 if none)."""
    total = 0
    for path in _weight_files(Path(folder)) or []:
        try:
            total += path.stat().st_size
        except OSError:  # reported when the weights are loaded
            continue
    return total


def read_safetensors_as(path: Path, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Read a safetensors file tensor by tensor, casting floating tensors to ``dtype``.

    Plain reads instead of a memory map: the file's pages never count towards this
    process's resident memory, so the peak is the converted weights plus one tensor in
    the stored dtype (memory-mapping a float32 file to cast it to bfloat16 holds both).
    """
    out: dict[str, torch.Tensor] = {}
    header = check_safetensors(path)
    with open(path, "rb") as f:
        start = 8 + int.from_bytes(f.read(8), "little")
        for name, info in header.items():
            if name == "__metadata__":
                continue
            stored = _SAFETENSORS_DTYPES.get(info["dtype"])
            if stored is None:
                raise CheckpointError(
                    f"{path}: tensor {name} has unsupported dtype {info['dtype']}"
                )
            begin, end = info["data_offsets"]
            buffer = bytearray(end - begin)
            f.seek(start + begin)
            if f.readinto(buffer) != len(buffer):
                raise CheckpointError(f"{path}: truncated file (tensor {name})")
            tensor = (
                torch.frombuffer(buffer, dtype=stored) if buffer else torch.empty(0, dtype=stored)
            )
            tensor = tensor.reshape(info["shape"])
            if tensor.is_floating_point() and stored != dtype:
                tensor = tensor.to(dtype)
            else:
                tensor = tensor.clone()
            out[name] = tensor
    return out


def _load_component(model_cls: Any, root: Path, subfolder: str, dtype: torch.dtype) -> Any:
    """A diffusers model from ``root/subfolder`` in ``dtype``.

    When the weights must be cast (e.g. a float32 checkpoint loaded in bfloat16), they
    are streamed with :func:`read_safetensors_as` into a model built on the meta device,
    so loading never holds both copies; otherwise diffusers' own loader is used.
    """
    folder = root / subfolder
    files = _weight_files(folder)
    stored_dtypes: set[str] = set()
    for path in files or []:
        header = check_safetensors(path)
        stored_dtypes |= {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    wanted = next(k for k, v in _SAFETENSORS_DTYPES.items() if v == dtype)
    if not files or stored_dtypes <= {wanted}:
        with loading_errors(str(folder)):
            return model_cls.from_pretrained(root, subfolder=subfolder, torch_dtype=dtype)
    from accelerate import init_empty_weights

    with loading_errors(str(folder)):
        with init_empty_weights():
            model = model_cls.from_config(model_cls.load_config(folder))
        state: dict[str, torch.Tensor] = {}
        for path in files:
            state.update(read_safetensors_as(path, dtype))
        model.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise CheckpointError(f"{folder}: some weights are missing from the checkpoint")
    return model.eval()


def read_checkpoint_config(root: Path) -> dict[str, Any]:
    """``sharpdepth_config.json`` of a resolved checkpoint folder, or ``{}``."""
    cfg = root / CONFIG_FILE
    return _read_json(cfg) if cfg.is_file() else {}


@dataclass
class Components:
    """What a checkpoint folder holds, loaded (see :func:`load_components`).

    Attributes:
        root: the resolved checkpoint folder.
        unet: the ``diffusers.UNet2DConditionModel``.
        vae: the autoencoder (the checkpoint's, or the one passed in).
        scheduler: a ``diffusers.DDPMScheduler`` with the checkpoint's noise schedule.
        prompt_embeds: ``[1, L, D]`` empty-prompt embedding in the weights' dtype.
        prediction_type: ``"sample"``, ``"epsilon"`` or ``"v_prediction"``.
    """

    root: Path
    unet: Any
    vae: Any
    scheduler: Any
    prompt_embeds: torch.Tensor
    prediction_type: str


def load_components(
    name_or_path: str | os.PathLike[str],
    torch_dtype: torch.dtype = torch.float32,
    prediction_type: str | None = None,
    revision: str | None = None,
    vae: Any | None = None,
) -> Components:
    """Load a diffusers-layout checkpoint's networks, schedule and prompt embedding.

    Args:
        name_or_path: ``"nano"``, a local folder or a Hugging Face Hub id.
        torch_dtype: dtype of the UNet and autoencoder weights.
        prediction_type: override the UNet parametrisation (default: from the
            checkpoint's metadata, x0 for Lotus-G / SharpDepth).
        revision: Hub revision.
        vae: use this autoencoder instead of the checkpoint's ``vae/``.

    Raises:
        CheckpointError: missing folder, missing component, unreadable weights.
    """
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    root = resolve_checkpoint(name_or_path, revision=revision)
    model_index = (
        _read_json(root / "model_index.json") if (root / "model_index.json").is_file() else {}
    )
    needed = ["unet", "scheduler"] + ([] if vae is not None else ["vae"])
    missing = [name for name in needed if not (root / name).is_dir()]
    if missing:
        raise CheckpointError(
            f"checkpoint {str(root)!r} lacks {', '.join(m + '/' for m in missing)}; expected a "
            "diffusers layout with unet/, vae/, scheduler/ and text_encoder/ + tokenizer/ "
            f"(or {PROMPT_EMBEDS_FILE})"
        )
    # the text encoder (if any) runs and is freed before the UNet is loaded: lower peak
    embeds = _load_text_embedding(root)
    with loading_errors(f"checkpoint {str(root)!r}"):
        unet = _load_component(UNet2DConditionModel, root, "unet", torch_dtype)
        if vae is None:
            vae = _load_component(AutoencoderKL, root, "vae", torch_dtype)
        sched_cfg = DDPMScheduler.load_config(root, subfolder="scheduler")
        scheduler = DDPMScheduler.from_config(sched_cfg)
    ptype = prediction_type or _default_prediction_type(root, model_index)
    LOGGER.info(
        "loaded %s (%s layout, prediction type %s)",
        root,
        model_index.get("_class_name", "unknown"),
        ptype,
    )
    return Components(root, unet, vae, scheduler, embeds.to(torch_dtype), ptype)


def write_checkpoint(
    path: str | os.PathLike[str],
    unet: Any,
    vae: Any,
    scheduler: Any,
    prompt_embeds: torch.Tensor,
    config: Mapping[str, Any],
) -> None:
    """Write our diffusers-style layout atomically (folder swapped in when complete).

    The folder holds ``unet/``, ``vae/``, ``scheduler/``, ``prompt_embeds.safetensors``,
    ``model_index.json`` and ``sharpdepth_config.json`` (``config``); no text encoder is
    needed to load it.
    """
    import diffusers

    from sharpdepth import __version__

    def write(tmp: Path) -> None:
        unet.save_pretrained(tmp / "unet")
        vae.save_pretrained(tmp / "vae")
        scheduler.save_pretrained(tmp / "scheduler")
        save_file(
            {PROMPT_EMBEDS_KEY: prompt_embeds.detach().float().cpu().contiguous()},
            str(tmp / PROMPT_EMBEDS_FILE),
        )
        index = {
            "_class_name": "SharpDepthPipeline",
            "_diffusers_version": diffusers.__version__,
            "_sharpdepth_version": __version__,
            "unet": ["diffusers", type(unet).__name__],
            "vae": ["diffusers", type(vae).__name__],
            "scheduler": ["diffusers", type(scheduler).__name__],
        }
        (tmp / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
        (tmp / CONFIG_FILE).write_text(json.dumps(dict(config), indent=2) + "\n")

    atomic_write_folder(path, write)
