"""Weight sources for preference objectives (``objective.weights``) and the protocols callbacks use."""

from lit_iwpo.objectives.weights.base import Refreshable, StoredWeights, Uniform, WeightExport, WeightSource
from lit_iwpo.objectives.weights.calibration import CalibrationWeights, Classifier, EmbeddingProbe, HFClassifier
from lit_iwpo.objectives.weights.column import ColumnWeights
from lit_iwpo.objectives.weights.iwpo import ClusterRewardWeights
from lit_iwpo.objectives.weights.density_ratio import (
    BatchPool,
    DensityRatioWeights,
    Pool,
    RecentPool,
    RefreshPool,
)
from lit_iwpo.objectives.weights.token import (
    ContrastiveAdapters,
    ContrastivePrompts,
    ContrastiveTokenWeights,
)
from lit_iwpo.objectives.weights.wpo import WPOWeights

__all__ = ["BatchPool", "CalibrationWeights", "Classifier", "ClusterRewardWeights", "ColumnWeights", "EmbeddingProbe", "HFClassifier", "ContrastiveAdapters", "ContrastivePrompts", "ContrastiveTokenWeights", "DensityRatioWeights", "Pool", "RecentPool", "RefreshPool", "Refreshable",
           "StoredWeights", "Uniform", "WPOWeights", "WeightExport", "WeightSource"]
