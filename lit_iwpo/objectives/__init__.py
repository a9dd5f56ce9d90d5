"""Strategy objects for ``PreferenceModule(objective=...)``: loss × weight source → reduction."""

from lit_iwpo.objectives.base import Objective, ObjectiveOutput, PreferenceObjective, StepInputs
from lit_iwpo.objectives.context import StepContext
from lit_iwpo.objectives.dpo import DPO, SFT
from lit_iwpo.objectives.iw_dpo import IWDPO
from lit_iwpo.objectives.reductions import DRO, Mean, Reduction
from lit_iwpo.objectives.tis_dpo import TISDPO
from lit_iwpo.objectives.wpo import WPO

__all__ = ["DPO", "DRO", "IWDPO", "SFT", "TISDPO", "WPO", "Mean", "Objective", "ObjectiveOutput", "PreferenceObjective", "Reduction",
           "StepContext", "StepInputs"]
