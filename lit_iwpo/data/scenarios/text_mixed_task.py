"""Mixed-task material: helpful_harmless's requests as two tasks in one training set (IWPO's setting).

Text: ``material/mixed_task.json`` names helpful_harmless's topics of both categories (``topics_from``) and
its populations' ranks; every text, template and wording list is helpful_harmless's, and so are the rules
that render a response (:class:`~lit_iwpo.data.scenarios.text_hh.HelpfulHarmlessMaterial`).

Two tasks whose preference levels overlap: benign requests (helpfulness: helpful > vague > needless refusal)
and risky requests (harmlessness: safe refusal > curt refusal > compliance). Every contrast of each task
occurs, so besides pairs whose chosen answer is the best one (helpful over vague, safe refusal over
compliance) there are pairs whose chosen answer is only the lesser evil (vague over a needless refusal, a
curt refusal over compliance). One reward scale over both tasks puts the levels of one task among those of
the other; IWPO's multi-cluster reward model normalises rewards within each cluster. Default preset: shift
``a`` (no shift: training, D_v and D_te share one distribution); the other shift types work as on
helpful_harmless with its two annotator populations.
"""

from __future__ import annotations

from lit_iwpo.data.scenarios.loader import MaterialSchema
from lit_iwpo.data.scenarios.material import Topic
from lit_iwpo.data.scenarios.text_hh import SCHEMA as HH_SCHEMA
from lit_iwpo.data.scenarios.text_hh import HelpfulHarmlessMaterial

SCHEMA = MaterialSchema(forms=HH_SCHEMA.forms, wording=HH_SCHEMA.wording, categories=HH_SCHEMA.categories,
                        base=("helpful_harmless", HH_SCHEMA))


class MixedTaskMaterial(HelpfulHarmlessMaterial):
    """Benign and risky requests as two tasks, with every contrast of each (the lesser evil chosen too)."""

    name = "mixed_task"
    schema = SCHEMA

    def contrasts(self, topic: Topic, kind: str) -> list[tuple[str, str]]:
        if kind != "dep":
            return []  # every contrast occurs at deployment: shift types that move the response pair have none
        if topic.category == "benign":
            return [("helpful", "vague"), ("helpful", "needless-refusal"), ("vague", "needless-refusal")]
        return [("safe-refusal", "compliance"), ("safe-refusal", "curt-refusal"), ("curt-refusal", "compliance")]
