"""``lit_iwpo``: the command line.

- ``fit | validate | test | predict``: LightningCLI (one config file or several, dotted overrides).
- ``export``, ``generate``, ``scenario``, ``table``: tools with their own ``--help``.

User errors (bad data, bad options, settings that cannot go together) end in one line on stderr and exit
status 2; ``LIT_IWPO_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from lit_iwpo.callbacks.artifacts import RunArtifacts
from lit_iwpo.callbacks.deployment import DeploymentEval
from lit_iwpo.callbacks.progress import StepProgressBar
from lit_iwpo.data.datamodule import PreferenceDataModule
from lit_iwpo.errors import UserError
from lit_iwpo.module import PreferenceModule

DEFAULT_SAVE_DIR = "runs"
TRAINER_DEFAULTS = {
    "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
               "init_args": {"save_dir": DEFAULT_SAVE_DIR, "name": "lit_iwpo"}},
    # our samplers shard themselves across ranks and resume mid-epoch; Lightning's wrapper would do neither
    "use_distributed_sampler": False,
    # a CPU step takes seconds: a metrics.csv row per step costs nothing, and short runs log at all
    "log_every_n_steps": 1,
}

# where a wrong class path lists the valid ones: option suffix -> (module, base class name)
CLASS_CHOICES = {
    "objective": ("lit_iwpo.objectives", "Objective"),
    "weights": ("lit_iwpo.objectives.weights", "WeightSource"),
    "estimator": ("lit_iwpo.weighting", "DensityRatioEstimator"),
    "reduction": ("lit_iwpo.objectives.reductions", "Reduction"),
    "sampler": ("lit_iwpo.data.sampler", "TrainSampler"),
    "judge": ("lit_iwpo.eval.judges", "Judge"),
    "classifier": ("lit_iwpo.objectives.weights.calibration", "Classifier"),
    "contrast": ("lit_iwpo.objectives.weights.token", "Contrast"),
    "weight_map": ("lit_iwpo.weighting.token_weights", "TokenWeightMap"),
}

INTERMEDIATE_BASES = {"PreferenceObjective", "StoredWeights"}

TOOLS = {
    "export": ("lit_iwpo.export", "export_main", "write a portable adapter, or a merged model, from a checkpoint"),
    "generate": ("lit_iwpo.generate", "generate_main", "reply to prompts (or chat) with a trained policy"),
    "scenario": ("lit_iwpo.data.scenarios", "scenario_main", "list, describe and write embedded shift scenarios"),
    "table": ("lit_iwpo.eval.table", "table_main", "run or collect a results table over methods and seeds"),
    "tis-weights": ("lit_iwpo.tis_weights", "tis_weights_main",
                    "train TIS-DPO's contrastive adapters and compute its token weights (fit's arguments)"),
}

SUBCOMMANDS = {
    "fit": "train (a method = model.objective; e.g. --config configs/quickstart.yaml)",
    "validate": "evaluate on data.val (with --ckpt_path: a trained checkpoint)",
    "test": "evaluate on data.test: preference metrics and the deployment win rate",
    "predict": "generate for data.predict (or data.test) prompts into predictions.jsonl",
}


def debug_mode() -> bool:
    return os.environ.get("LIT_IWPO_DEBUG", "") not in ("", "0")


def class_choices(key: str) -> str:
    """The shipped classes an option ``key`` (e.g. ``model.objective``) accepts, as ``module.Class`` paths."""
    suffix = key.rsplit(".", 1)[-1]
    if suffix not in CLASS_CHOICES:
        return ""
    module_name, base_name = CLASS_CHOICES[suffix]
    module = importlib.import_module(module_name)
    base = getattr(module, base_name)
    names = sorted(name for name in getattr(module, "__all__", dir(module))
                   if isinstance(cls := getattr(module, name, None), type) and issubclass(cls, base)
                   and name not in INTERMEDIATE_BASES and not getattr(cls, "__abstractmethods__", None))
    return ", ".join(f"{module_name}.{n}" for n in names)


def _one_line(message: str) -> str:
    lines = [line.strip().lstrip("- ").strip() for line in message.splitlines() if line.strip()]
    unique = list(dict.fromkeys(lines))
    return "; ".join(unique).replace(":;", ":")


class LitIWPOParser(LightningArgumentParser):
    """jsonargparse's parser, with usage errors as one line (plus the valid class paths for a wrong one)
    instead of the whole usage text."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error or debug_mode():
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        # "lit_iwpo fit", also when started as python -m or from a test (argv[0] differs)
        prog = " ".join(["lit_iwpo", *parser.prog.replace(" [options]", "").split()[1:]])
        text = _one_line(message)
        hint = ""
        if "class" in message.lower() or "import" in message.lower():
            key = next((k for k in CLASS_CHOICES if f'.{k}"' in message or f'"{k}"' in message), None)
            choices = class_choices(key) if key else ""
            if choices:
                hint = f". Shipped choices: {choices} (or your own module.Class on PYTHONPATH)"
        sys.stderr.write(f"{prog}: error: {text}{hint} (all options: {prog} --help)\n")
        sys.exit(2)


class LitIWPOCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("model.name_or_path", "data.tokenizer")
        parser.add_lightning_class_args(RunArtifacts, "artifacts")
        parser.add_lightning_class_args(DeploymentEval, "eval")
        parser.add_argument(
            "--test_after_fit", type=bool, default=True,
            help="After fit, evaluate the final weights on data.test (if set) so summary.json holds test/* metrics.",
        )

    def before_instantiate_classes(self) -> None:
        # trainer.default_root_dir, when given, is where the run goes: the default logger's save_dir follows it
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config.get("trainer")
        root = trainer.get("default_root_dir") if trainer is not None else None
        logger = trainer.get("logger") if trainer is not None else None
        if root and logger is not None and not isinstance(logger, bool):
            loggers = logger if isinstance(logger, list) else [logger]
            for item in loggers:
                init = item.get("init_args") if hasattr(item, "get") else None
                if init is not None and init.get("save_dir") == DEFAULT_SAVE_DIR:
                    init["save_dir"] = str(root)

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list) -> Any:
        # a step-counting progress bar, unless bars are off or the config brings its own
        configured = config.get("callbacks") or []
        configured = configured if isinstance(configured, list) else [configured]
        if config.get("enable_progress_bar", True) is not False and not any(
                isinstance(cb, ProgressBar) for cb in [*configured, *callbacks]):
            callbacks = [*callbacks, StepProgressBar()]
        return super()._instantiate_trainer(config, callbacks)

    def after_fit(self) -> None:
        # the summary reports the final weights: validate them unless the last validation already did
        artifacts = next(cb for cb in self.trainer.callbacks if isinstance(cb, RunArtifacts))
        if self.datamodule.has_split("val") and artifacts.last_val_step != self.trainer.global_step:
            self.trainer.validate(self.model, datamodule=self.datamodule, verbose=False)
        if self.config_init[self.subcommand].get("test_after_fit", True) and self.datamodule.has_split("test"):
            self.trainer.test(self.model, datamodule=self.datamodule)
        artifacts.finish(self.trainer)

    def after_test(self) -> None:
        RunArtifacts.announce(self.trainer)

    def after_predict(self) -> None:
        RunArtifacts.announce(self.trainer)


def cli(args: list[str] | None = None, run: bool = True) -> LitIWPOCLI:
    """Run the Lightning CLI and return it (tests and notebooks inspect ``.trainer`` and ``.model``).

    ``args=None`` parses ``sys.argv``; a list runs in-process as if typed after ``lit_iwpo``. ``run=False``
    only parses a fit's arguments (no subcommand) and builds model, data and trainer, running nothing."""
    # jsonargparse >= 4.49 makes Lightning's CLI print deprecation noise that users cannot act on
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="jsonargparse|lightning")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # in-process callers (tests, notebooks) pass args while sys.argv holds their own command line
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    return LitIWPOCLI(
        PreferenceModule,
        PreferenceDataModule,
        subclass_mode_model=False,
        subclass_mode_data=False,
        trainer_defaults=TRAINER_DEFAULTS,
        save_config_kwargs={"overwrite": True},
        seed_everything_default=0,
        args=args,
        run=run,
        auto_configure_optimizers=False,
        parser_class=LitIWPOParser,
    )


def overview() -> str:
    """The top-level ``lit_iwpo --help``."""
    width = max(map(len, [*SUBCOMMANDS, *TOOLS]))
    lines = ["usage: lit_iwpo {" + ",".join([*SUBCOMMANDS, *TOOLS]) + "} ...", "",
             "Preference optimisation under deployment distribution shift (PyTorch Lightning).", "",
             "training (LightningCLI; --config FILE [--config FILE2 ...], dotted overrides, --print_config):"]
    lines += [f"  {name:<{width}}  {text}" for name, text in SUBCOMMANDS.items()]
    lines += ["", "tools:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, _, text) in TOOLS.items()]
    lines += ["", "`lit_iwpo COMMAND --help` lists a command's options. Errors print one line; LIT_IWPO_DEBUG=1 shows "
              "the traceback."]
    return "\n".join(lines)


def _dispatch(args: list[str] | None) -> int:
    argv = sys.argv[1:] if args is None else args
    if not argv or argv[0] in ("-h", "--help"):
        print(overview())
        return 0
    if argv[0] in TOOLS:
        module, func, _ = TOOLS[argv[0]]
        return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)
    cli(args)
    return 0


def main(args: list[str] | None = None) -> None:
    """Console entry point (see the module docstring)."""
    try:
        code = _dispatch(args)
    except (UserError, MisconfigurationException) as err:
        if debug_mode():
            raise
        failed_run = getattr(err, "run_dir", None)
        sys.stderr.write(f"lit_iwpo: error: {err}\n")
        if failed_run is not None:
            sys.stderr.write(f"lit_iwpo: logs of the failed run are in {failed_run}\n")
        sys.exit(2)
    sys.exit(code)


if __name__ == "__main__":
    main()
