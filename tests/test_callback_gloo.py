"""The callback's per-rank checks under two real gloo ranks: a check that fails on one rank is every rank's outcome.

A ``reference_fn`` bank (and, in principle, a model) differs between ranks, so a check can fail on one rank only.
That rank used to raise alone while the others went on into training's next collective, to wait there for the
failed rank until the process group's timeout (or fail with a bare connection error when its process had exited).
Now the outcome is agreed on (one small all-reduce): at ``setup`` and when training starts every rank raises a clear
error naming the rank whose check failed; at a measurement every rank survives the same ``ReferenceBankError``, and
an error that ``reference_fn`` itself raises on one rank ends the fit on every rank (that rank's own error, a
``RuntimeError`` naming it on the others) instead of leaving the others to wait for it. So does an error in one
rank's probe pass at a measurement (the user's forward raising there), and a watched layer that one rank's probe pass
cannot read is a measurement fault that every rank survives.
The ranks run :mod:`_helpers.ddp_setup_check` (externally launched, so that each rank's exception stays its own).
"""

from __future__ import annotations

import json
import socket
from contextlib import closing
from pathlib import Path

import pytest
import torch.multiprocessing as mp
from _helpers import ddp_setup_check

#: The seconds a fit of these tests' own cases may take: a rank left waiting for another waits for the process
#: group's timeout (``PROBE_TIMEOUT_S``) before it fails; the 5 s margin leaves room for the group's start-up on a
#: loaded machine (the limit catches a hang, it measures no speed).
HANG_S = ddp_setup_check.PROBE_TIMEOUT_S - 5


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _outcomes(case: str, out: Path) -> list[dict]:
    mp.spawn(ddp_setup_check.run, args=(_free_port(), str(out), case), nprocs=ddp_setup_check.WORLD, join=True)
    return [json.loads((out / f"{case}-rank{r}.json").read_text()) for r in range(ddp_setup_check.WORLD)]


@pytest.mark.ddp
def test_a_layer_missing_on_one_rank_stops_every_rank_at_setup(tmp_path):
    rank0, rank1 = _outcomes("layer", tmp_path)
    assert rank1["error"] == "MisconfigurationException", rank1.get("trace")
    assert "extra" in rank1["message"]
    assert rank0["error"] == "MisconfigurationException", rank0.get("trace")
    assert "rank 1's check before training failed (MisconfigurationException)" in rank0["message"]
    assert rank1["message"] in rank0["message"]
    for outcome in (rank0, rank1):
        assert outcome["steps"] == 0
        assert outcome["seconds"] < ddp_setup_check.TIMEOUT_S / 2, outcome  # no rank waited for the timeout
    # Then, on the same process group, a check whose error on rank 1 is a MisconfigurationException subclass of
    # another name: rank 0 raises a MisconfigurationException too (it used to tell the kind by the class name, and
    # raised a RuntimeError).
    sub0, sub1 = rank0["subclass"], rank1["subclass"]
    assert sub1["error"] == "LayerMissingError", sub1.get("trace")
    assert sub0["error"] == "MisconfigurationException", sub0.get("trace")
    assert "rank 1's check before training failed (LayerMissingError): no layer 'extra'" in sub0["message"]


@pytest.mark.ddp
def test_a_bad_reference_fn_bank_on_one_rank_stops_every_rank_before_training(tmp_path):
    # Rank 0's reference_fn is not ready (None: its check is deferred), rank 1's bank has width 3 against the layer's
    # 64: rank 1 raises its configuration error, and rank 0 the same, naming rank 1, instead of starting to train.
    rank0, rank1 = _outcomes("bank", tmp_path)
    width = "width 3, but the queries, layer 'backbone', have width 64"
    assert rank1["error"] == "MisconfigurationException", rank1.get("trace")
    assert width in rank1["message"]
    assert rank0["error"] == "MisconfigurationException", rank0.get("trace")
    assert "rank 1's check before training failed" in rank0["message"]
    assert width in rank0["message"]
    for outcome in (rank0, rank1):
        assert outcome["steps"] == 0
        assert outcome["seconds"] < ddp_setup_check.TIMEOUT_S / 2, outcome


@pytest.fixture(scope="module")
def measure_raises(tmp_path_factory) -> list[dict]:
    """The outcomes of one fit for the two measurement tests (a gloo fit costs seconds)."""
    return _outcomes("measure_raises", tmp_path_factory.mktemp("gloo"))


@pytest.mark.ddp
def test_a_reference_fn_width_change_on_one_rank_is_survived_by_every_rank(measure_raises):
    # At the first measurement rank 1's bank has width 32 (64 at the start of training and at the second): a
    # measurement fault (DESIGN §5), survived on both ranks alike with strict=False: NaN and valid 0 that epoch, a
    # full measurement the next, the same history on both ranks; the fit trains on into the third epoch (whose
    # measurement ends it: the next test).
    rank0, rank1 = measure_raises
    for outcome in (rank0, rank1):
        assert outcome["steps"] == 6, outcome.get("trace")
    assert rank0["history"] == rank1["history"]
    first, second = rank0["history"]
    assert first["repgap/valid"] == 0
    assert all(v is None for k, v in first.items() if k.startswith("repgap/") and k != "repgap/valid")
    assert second["repgap/valid"] == 1
    assert all(v is not None for k, v in second.items() if k.startswith("repgap/"))


@pytest.mark.ddp
def test_an_error_raised_by_reference_fn_on_one_rank_ends_the_fit_on_every_rank(measure_raises):
    # At the third measurement rank 1's reference_fn raises a ValueError: an error in the user's code, not a bad bank
    # (DESIGN §5: it propagates, strict=False or not). Rank 1 raises it as raised; rank 0, which used to wait for
    # rank 1 in the bank checks' all-reduce until the process group's timeout, raises a RuntimeError naming rank 1,
    # although its own bank has the wrong width that epoch (a fault it would survive, to meet rank 1 nowhere).
    rank0, rank1 = measure_raises
    assert rank1["error"] == "ValueError", rank1.get("trace")
    assert rank1["message"] == ddp_setup_check.USER_ERROR
    assert rank0["error"] == "RuntimeError", rank0.get("trace")
    assert "rank 1's `reference_fn` raised ValueError" in rank0["message"]
    assert ddp_setup_check.USER_ERROR in rank0["message"]
    for outcome in (rank0, rank1):
        assert outcome["seconds"] < ddp_setup_check.TIMEOUT_S / 2, outcome  # no rank waited for the timeout


@pytest.mark.ddp
def test_a_probe_pass_that_fails_on_one_rank_fails_on_every_rank(tmp_path):
    # Rank 1's forward leaves the watched layer out at the second measurement's probe pass (an unreadable layer: a
    # measurement fault, DESIGN §5): both ranks survive it alike (valid 0, every key NaN, the same history). At the
    # third it raises (the bank's pass, before the validation capture's reduce): an error in the user's code, which
    # propagates. Rank 1 raises it as raised; rank 0, which used to go on into the capture's reduce and the metric's
    # gather and wait there for rank 1 until the process group's timeout (or fail on a closed connection), raises a
    # RuntimeError naming rank 1 and its error.
    rank0, rank1 = _outcomes("probe_raises", tmp_path)
    assert rank1["error"] == "ValueError", rank1.get("trace")
    assert rank1["message"] == ddp_setup_check.PROBE_ERROR
    assert rank0["error"] == "RuntimeError", rank0.get("trace")
    assert "rank 1's probe pass raised ValueError" in rank0["message"]
    assert ddp_setup_check.PROBE_ERROR in rank0["message"]
    assert rank0["history"] == rank1["history"]
    first, second = rank0["history"]
    assert first["repgap/valid"] == 1
    assert second["repgap/valid"] == 0
    assert all(v is None for k, v in second.items() if k.startswith("repgap/") and k != "repgap/valid")
    (raised,) = rank1["forward_raised_at"]
    for outcome in (rank0, rank1):
        assert outcome["steps"] == 6
        # No rank waited for the timeout: each learnt of the error within half of it.
        assert outcome["raised_at"] - raised < ddp_setup_check.PROBE_TIMEOUT_S / 2, outcome


@pytest.mark.ddp
def test_captured_and_probed_rows_of_other_widths_on_one_rank_are_survived_by_every_rank(tmp_path):
    # Rank 1's validation-probe rows captured in the validation loop are 2 wide, those its probe pass embeds for the
    # rows the capture missed 3 wide: an unreadable layer, survived alike by both ranks (valid 0, every key NaN, the
    # same history). Their concatenation raised a RuntimeError on rank 1 alone, after the capture's collective and
    # outside the agreement on the probe pass: rank 1's fit ended, and rank 0 waited for it in that agreement.
    _assert_survived_alike_by_every_rank(_outcomes("capture_width", tmp_path))


@pytest.mark.ddp
def test_a_figure_write_fault_in_strict_mode_ends_the_fit_on_every_rank(tmp_path):
    # Only rank 0 writes figures. Strict mode re-raises its FigureIOError, now after the values' broadcast, on every
    # rank (rank 1: the same class, naming rank 0); it raised on rank 0 alone, before that broadcast, where rank 1
    # was left waiting for it.
    _assert_raised_on_every_rank(_outcomes("strict_figure", tmp_path), "FigureIOError", "figure 'repgap/gap_curve'")


@pytest.mark.ddp
def test_a_snapshot_write_fault_at_a_checkpoint_in_strict_mode_ends_the_fit_on_every_rank(tmp_path):
    # snapshot_on="checkpoint": every rank saves the checkpoint, only rank 0 writes the snapshot. Strict mode raised
    # its SnapshotIOError on rank 0 alone, inside Trainer.save_checkpoint, and rank 1 failed in the save's barrier
    # with a bare gloo connection error; now the fault is broadcast and raised on every rank.
    _assert_raised_on_every_rank(_outcomes("strict_ckpt", tmp_path), "SnapshotIOError", "snapshot 'epoch=0000-step=")


@pytest.mark.ddp
def test_rows_of_another_width_on_each_rank_are_survived_by_every_rank(tmp_path):
    # Each rank's watched layer is consistent on its own (2 wide on rank 0, 3 wide on rank 1): every check of a
    # rank passes, and the metric's gather found the widths differ. It raised a plain ValueError that ended the fit
    # on every rank; the gather's shape table is the same on every rank, so every rank now raises the same
    # RankWidthError there, an unreadable layer that every rank survives alike.
    _assert_survived_alike_by_every_rank(_outcomes("rank_width", tmp_path))


def _assert_survived_alike_by_every_rank(outcomes: list[dict]) -> None:
    """An unreadable layer at the one measurement: no rank's fit ended or hung, both logged valid 0 and NaN keys."""
    rank0, rank1 = outcomes
    for outcome in (rank0, rank1):
        assert outcome["error"] is None, outcome.get("trace")
        assert outcome["steps"] == 2
        assert outcome["seconds"] < HANG_S, outcome
    assert rank0["history"] == rank1["history"]
    (only,) = rank0["history"]
    assert only["repgap/valid"] == 0
    assert all(v is None for k, v in only.items() if k.startswith("repgap/") and k != "repgap/valid")


def _assert_raised_on_every_rank(outcomes: list[dict], error: str, start: str) -> None:
    """Rank 0 raised ``error`` (its message starting with ``start``), rank 1 the same class naming rank 0."""
    rank0, rank1 = outcomes
    assert rank0["error"] == error, rank0.get("trace")
    assert rank0["message"].startswith(start), rank0["message"]
    assert "could not be written" in rank0["message"]
    assert rank1["error"] == error, rank1.get("trace")
    assert rank1["message"] == f"on rank 0: {rank0['message']}"
    for outcome in (rank0, rank1):
        assert outcome["steps"] == 2
        assert outcome["seconds"] < HANG_S, outcome
