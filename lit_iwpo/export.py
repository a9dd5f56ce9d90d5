"""``lit_iwpo export``: a trained model as a portable adapter folder or a merged, standalone model.

    lit_iwpo export --ckpt_path runs/NAME/version_N/checkpoints/last.ckpt            # -> RUN/export
    lit_iwpo export --ckpt_path runs/NAME/version_N/checkpoints/last.ckpt --merged   # -> RUN/export-merged
    lit_iwpo export --adapter runs/NAME/version_N/hf --merged                       # -> RUN/export-merged

From a checkpoint the model is rebuilt from the run's saved ``config.yaml`` (its ``model`` section; checkpoints
hold only the trained tensors) and the checkpoint's weights are loaded into it. Without ``--merged`` the
result is the same portable folder a run leaves in ``hf/`` (see :mod:`lit_iwpo.models.trained`); with
``--merged`` the LoRA adapter is merged into its base and saved as a plain transformers model + tokenizer that
``transformers.AutoModelForCausalLM.from_pretrained(OUT)`` loads alone (no peft). Full fine-tuning runs export
the full model either way. The output folder's path is printed on stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lit_iwpo.errors import ConfigError

DESCRIPTION = """\
Export a trained model. From a checkpoint (--ckpt_path) the model is rebuilt from the run's config.yaml
(RUN/config.yaml for RUN/checkpoints/X.ckpt; --config overrides) and the checkpoint's weights. Without
--merged: the portable adapter folder a run writes as hf/ (LoRA adapter + tokenizer, with the base saved
beside it when it exists nowhere else); full fine-tuning runs export the full model. With --merged: the
LoRA adapter merged into its base, a plain transformers folder (model + tokenizer) that
transformers.AutoModelForCausalLM.from_pretrained(OUT) loads alone. --adapter merges an existing export
(a run's hf/ or the output of this command) instead of a checkpoint. Prints the output folder."""

EPILOG = """\
examples:
  lit_iwpo export --ckpt_path runs/quickstart/version_0/checkpoints/last.ckpt --merged
  lit_iwpo export --adapter runs/quickstart/version_0/hf --merged --out my-model
  lit_iwpo generate --adapter runs/quickstart/version_0/export-merged "What is DPO?"
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lit_iwpo export", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt_path", type=Path, metavar="CKPT",
                     help="a checkpoint of a run, e.g. runs/NAME/version_N/checkpoints/last.ckpt")
    src.add_argument("--adapter", type=Path, metavar="DIR",
                     help="an existing export to merge (a run's hf/ folder or the output of lit_iwpo export); "
                          "needs --merged")
    p.add_argument("--merged", action="store_true",
                   help="merge the LoRA adapter into its base and save a plain transformers model")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="output folder (default: RUN/export, or RUN/export-merged with --merged, in the run "
                        "folder of the checkpoint or of the hf/ folder; a previous export there is replaced, "
                        "any other non-empty folder is refused)")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="with --ckpt_path: the config the run was trained with (default: RUN/config.yaml, "
                        "saved by lit_iwpo fit)")
    return p


def run_folder(ckpt: Path) -> Path:
    """The run directory of a checkpoint: RUN for RUN/checkpoints/X.ckpt, else the checkpoint's folder."""
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent


def module_from_config(config: Path):
    """A :class:`~lit_iwpo.module.PreferenceModule` built (not yet configured) from the ``model`` section of a
    run's config file, parsed the way ``lit_iwpo fit`` parsed it."""
    import yaml
    from lightning.pytorch.cli import LightningArgumentParser

    from lit_iwpo.module import PreferenceModule

    try:
        saved = yaml.safe_load(config.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"--config: cannot read {config} ({type(err).__name__}: {err})".splitlines()[0]) from None
    if not isinstance(saved, dict) or not isinstance(saved.get("model"), dict):
        raise ConfigError(f"--config: {config} has no model section; give the config.yaml of the run "
                          "(lit_iwpo fit saves it in the run folder)")
    parser = LightningArgumentParser(exit_on_error=False)
    parser.add_lightning_class_args(PreferenceModule, "model", subclass_mode=False)
    try:
        cfg = parser.parse_object({"model": saved["model"]})
        return parser.instantiate_classes(cfg).model
    except ConfigError:
        raise
    except Exception as err:  # jsonargparse reports type errors as argparse/ValueError variants
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"--config: the model section of {config} does not build a model ({first})") from None


def module_from_checkpoint(ckpt: Path, config: Path | None = None):
    """Rebuild a run's :class:`~lit_iwpo.module.PreferenceModule` from its config and load the trained tensors
    of checkpoint ``ckpt`` (every trainable tensor must be in it). Returns ``(module, config_path)``."""
    import torch

    if not ckpt.is_file():
        raise ConfigError(f"--ckpt_path: {ckpt} not found; give a checkpoint such as "
                          "runs/NAME/version_N/checkpoints/last.ckpt")
    if config is None:
        config = run_folder(ckpt) / "config.yaml"
        if not config.is_file():
            raise ConfigError(f"--config: the checkpoint's run has no config.yaml (looked for {config}); pass "
                              "--config with the config the run was trained with")
    elif not config.is_file():
        raise ConfigError(f"--config: {config} not found")
    module = module_from_config(config)
    init_adapter = module.hparams.init_adapter
    if init_adapter and not Path(init_adapter).expanduser().exists():
        raise ConfigError(f"--config: model.init_adapter {init_adapter} (relative to where the run was started) is "
                          "not found here, and the checkpoint's base needs it; run from that folder, fix the path "
                          "with --config, or merge the run's hf/ folder with --adapter")
    try:
        checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "Weights only load failed" in first:  # torch's advice about weights_only=False does not apply here
            first = "torch.load with weights_only=True cannot read it"
        raise ConfigError(f"--ckpt_path: {ckpt} is not a readable Lightning checkpoint ({first})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"--ckpt_path: {ckpt} is not a Lightning checkpoint (no state_dict)")
    module.configure_model()
    state = checkpoint["state_dict"]
    missing = sorted(module.trainable_state_keys() - set(state))
    detail = f"lacks {len(missing)} trained tensors, e.g. {missing[:2]}" if missing else None
    try:
        unexpected = module.load_state_dict(state, strict=False).unexpected_keys
        if unexpected and not detail:
            detail = f"has {len(unexpected)} tensors the model has not, e.g. {unexpected[:2]}"
    except RuntimeError as err:  # shape mismatches (e.g. another LoRA rank)
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        first = lines[1] if len(lines) > 1 else lines[0] if lines else type(err).__name__
        detail = detail or f"has tensors of other shapes ({first.rstrip('.')})"
    if detail:
        raise ConfigError(f"--ckpt_path: {ckpt} does not match the model built from {config}: the checkpoint "
                          f"{detail}; pass the run's own config with --config")
    return module.eval(), config


def _default_out(ckpt_path: Path | None, adapter: Path | None, merged: bool) -> Path:
    name = "export-merged" if merged else "export"
    if ckpt_path is not None:
        return run_folder(ckpt_path) / name
    adapter = adapter.expanduser().resolve()
    return adapter.parent / name if adapter.name == "hf" else adapter.parent / f"{adapter.name}-merged"


def export(ckpt_path: Path | None = None, adapter: Path | None = None, merged: bool = False,
           out: Path | None = None, config: Path | None = None) -> Path:
    """The work of ``lit_iwpo export`` (see the module docstring); returns the output folder."""
    from lit_iwpo.models.trained import (PARTS_NAME, ExportInfo, check_export_dir, load_trained, merge_adapter,
                                         read_info, save_merged)

    if (ckpt_path is None) == (adapter is None):
        raise ConfigError("export: give either --ckpt_path or --adapter")
    if adapter is not None and not merged:
        raise ConfigError(f"--adapter: {adapter} already is an export (copy it as it is); add --merged to merge "
                          "its adapter into the base")
    if adapter is not None and config is not None:
        raise ConfigError("--config goes with --ckpt_path; an --adapter export carries its own settings")
    out = check_export_dir(Path(out) if out is not None else _default_out(ckpt_path, adapter, merged), "--out")
    if ckpt_path is not None:
        module, _ = module_from_checkpoint(Path(ckpt_path), Path(config) if config is not None else None)
        if not merged:
            return module.save_hf(out)
        hp = module.hparams
        info = ExportInfo(kind="merged" if module.lora is not None else "full", name_or_path=module.name_or_path,
                          init_adapter=hp.init_adapter, seed=hp.seed, dtype=hp.dtype,
                          objective=type(module.objective).__name__, generation=module.generation)
        return save_merged(merge_adapter(module.policy), module.tokenizer, out, info,
                           objective_parts=dict(module.objective_parts.state_dict()))
    adapter = Path(adapter)
    model, tokenizer = load_trained(adapter, what="--adapter")
    info = read_info(adapter)
    known = {k: info[k] for k in ("name_or_path", "init_adapter", "seed", "dtype", "objective", "generation")
             if k in info}
    kind = "merged" if (adapter / "adapter_config.json").is_file() else info.get("kind", "full")
    return save_merged(merge_adapter(model), tokenizer, out, ExportInfo(kind=kind, **known),
                       objective_parts=adapter / PARTS_NAME)


def export_main(argv: list[str] | None = None) -> int:
    """Console entry of ``lit_iwpo export``; prints the output folder."""
    args = _parser().parse_args(argv)
    out = export(args.ckpt_path, args.adapter, args.merged, args.out, args.config)
    what = "merged model" if args.merged else "export"
    print(f"lit_iwpo: wrote {what} to {out}", file=sys.stderr)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(export_main())
