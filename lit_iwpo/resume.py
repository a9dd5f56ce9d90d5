"""Checkpoints that resume exactly, also those written after the last epoch was closed.

When a run stops (``max_steps`` in the middle of an epoch, or at an epoch's end), Lightning closes the epoch
(its progress counters mark it processed and completed) before end-of-run and epoch-end checkpoints are written
(``save_last``, Lightning's default checkpoint, any checkpoint whose interval does not divide ``max_steps``).
Resumed with a larger ``max_steps``, Lightning then starts a new epoch even when the closed one was cut short:
a fresh shuffle, and the unseen rest of the cut epoch never trained on; and its logging step counter is off by
one. :func:`reopen_closed_epoch` rewrites the saved loop state into the state of a checkpoint written at the
end of the same step's batch (``on_train_batch_end``), the case Lightning restores exactly: a cut epoch
continues at the next batch, a finished one moves to the next epoch, and the resumed run ends bit-identical
to a run trained straight through.
"""

from __future__ import annotations

from typing import Any

FIT_LOOP = "fit_loop"


def epoch_closed(checkpoint: dict[str, Any]) -> bool:
    """Was the checkpoint written after its epoch was closed, with every trained batch completed?"""
    loop = checkpoint.get("loops", {}).get(FIT_LOOP)
    if not loop or "epoch_progress" not in loop:
        return False
    epoch, batches = loop["epoch_progress"]["current"], loop["epoch_loop.batch_progress"]["current"]
    closed = epoch["started"] > 0 and epoch["processed"] == epoch["started"]
    return closed and batches["processed"] > 0 and batches["completed"] == batches["processed"]


def reopen_closed_epoch(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Rewrite, in place, the fit-loop state of a checkpoint written after an epoch was closed into that of one
    written in ``on_train_batch_end`` of the epoch's last trained batch. Returns the checkpoint."""
    loop = checkpoint["loops"][FIT_LOOP]
    for counter in ("current", "total"):
        epoch = loop["epoch_progress"][counter]
        epoch["processed"] = epoch["completed"] = epoch["started"] - 1
        # a checkpoint written in on_train_batch_end has not yet counted that batch as completed ...
        loop["epoch_loop.batch_progress"][counter]["completed"] -= 1
    # ... nor stepped the logger's batch counter
    loop["epoch_loop.state_dict"]["_batches_that_stepped"] -= 1
    checkpoint["epoch"] = loop["epoch_progress"]["current"]["completed"]
    return checkpoint
