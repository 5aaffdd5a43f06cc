"""Capture intermediate representations of named submodules with forward hooks.

A *probe pass* runs a model over a few fixed batches and records, for each watched layer, one pooled vector per
sample. It must leave the model exactly as it found it: :func:`capture` records the ``training`` flag of every
submodule, switches the model to eval mode, registers forward hooks, runs under :func:`torch.no_grad` (inside the
caller's precision context, e.g. ``trainer.precision_plugin.forward_context()``) and, on exit, also on an
exception, removes every hook and restores every flag, including submodules that were deliberately in eval mode
inside a model in train mode.

Layer names are the names of ``model.named_modules()`` with wrapper prefixes removed (see
:func:`normalize_layer_name`), so ``"backbone"`` works for a model wrapped by ``torch.compile``, DDP or Fabric.

**Which tensor of a layer output is used.** Layers do not always return a tensor. The rule, applied by
:func:`pool`:

- a ``Tensor`` is used as is;
- a ``tuple``/``list`` gives its first element that is a ``Tensor`` (``nn.LSTM``, ``nn.MultiheadAttention``);
- a ``Mapping`` (including HuggingFace ``ModelOutput``) gives the value under ``"last_hidden_state"`` if present,
  else its only tensor value; several tensor values and no ``"last_hidden_state"`` is a ``TypeError`` naming the
  keys;
- any other object with a tensor attribute ``last_hidden_state`` gives it; other dataclasses give their only
  tensor field, as for a mapping.

**Pooling** turns that tensor into a ``(B, D)`` matrix, ``B`` being the leading (batch) dimension:

- a ``(B, D)`` tensor passes through unchanged in every mode, and a ``(B,)`` tensor becomes ``(B, 1)``;
- ``"flatten"``: ``x.reshape(B, -1)``;
- ``"mean"``: average over dimensions ``2, 3, ...``, i.e. global average pooling of a channels-first
  ``(B, C, *spatial)`` feature map to ``(B, C)``. For a ``(B, T, D)`` token sequence this averages the *features*,
  which is rarely wanted: use ``"tokens_mean"``;
- ``"tokens_mean"``: average over the token dimension of a ``(B, T, D)`` sequence, giving ``(B, D)``;
- ``"cls"``: the first token ``x[:, 0]`` of a ``(B, T, D)`` sequence;
- a callable ``f(x) -> Tensor`` receives the selected tensor and must return a 2-D tensor with ``B`` rows.

The result is detached and cast to ``float32`` (half-precision outputs captured under AMP become ``float32``; the
averages are accumulated in ``float32``).

**torch.compile.** Dynamo does not guard on hooks added after compilation, so hooks on a compiled module silently
never fire. :func:`capture` therefore runs the probe pass under ``torch.compiler.set_stance("force_eager")`` by
default: the compiled code is bypassed (no recompilation for eval mode, hooks fire) and the numbers are the eager
ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from lightning_repgap._layers import normalize_layer_name, resolve_layers

__all__ = [
    "POOLINGS",
    "Capture",
    "ProbeConfigurationError",
    "capture",
    "default_forward",
    "embed_batches",
    "embed_inputs",
    "lightning_transfer",
    "normalize_layer_name",
    "pool",
    "resolve_layers",
    "select_tensor",
    "split_batch",
]

Pooling = str | Callable[[Tensor], Tensor]

#: Valid pooling names for :func:`pool`.
POOLINGS: tuple[str, ...] = ("flatten", "mean", "tokens_mean", "cls")


# Dict-batch keys, in order of preference.
_INPUT_KEYS: tuple[str, ...] = ("x", "input", "inputs", "image", "pixel_values")
_LABEL_KEYS: tuple[str, ...] = ("y", "label", "labels", "target")


class ProbeConfigurationError(RuntimeError):
    """A watched layer cannot be measured as configured: it never runs, runs twice per forward, or rows disagree."""


def _check_pooling(pooling: Pooling) -> None:
    if callable(pooling):
        return
    if not isinstance(pooling, str) or pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be one of {list(POOLINGS)} or a callable, got {pooling!r}.")


def _tensor_of_mapping(output: Mapping[Any, Any], kind: str) -> Tensor:
    hidden = output.get("last_hidden_state")
    if isinstance(hidden, Tensor):
        return hidden
    tensors = [k for k, v in output.items() if isinstance(v, Tensor)]
    if len(tensors) == 1:
        return output[tensors[0]]
    raise TypeError(
        f"Cannot choose a tensor from a {kind} layer output with keys {list(output)}: it has"
        f" {'no' if not tensors else len(tensors)} tensor values and no 'last_hidden_state'. Watch a submodule that"
        " returns a tensor, or pass a `forward_fn`/pooling callable that selects one."
    )


def select_tensor(output: Any) -> Tensor:
    """Pick the tensor that represents a layer output, by the rule in the module docstring.

    Args:
        output: what a module's ``forward`` returned.

    Returns:
        The selected tensor (not pooled, not detached).

    Raises:
        TypeError: if no tensor can be selected unambiguously.

    Example:
        >>> select_tensor((torch.zeros(2, 3), (torch.ones(1), torch.ones(1)))).shape
        torch.Size([2, 3])
        >>> select_tensor({"pooler_output": torch.zeros(2), "last_hidden_state": torch.ones(2, 5, 4)}).shape
        torch.Size([2, 5, 4])

    """
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, Tensor):
                return item
        types = [type(item).__name__ for item in output]
        raise TypeError(f"Layer output is a {type(output).__name__} with no tensor element (element types {types}).")
    if isinstance(output, Mapping):
        return _tensor_of_mapping(output, type(output).__name__)
    hidden = getattr(output, "last_hidden_state", None)
    if isinstance(hidden, Tensor):
        return hidden
    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        fields = {f.name: getattr(output, f.name) for f in dataclasses.fields(output)}
        return _tensor_of_mapping(fields, f"dataclass {type(output).__name__}")
    raise TypeError(
        f"Cannot take a representation from a layer output of type {type(output).__name__}: expected a tensor, a"
        " tuple/list, a mapping, or an object with a `last_hidden_state` tensor."
    )


def _pool_tensor(x: Tensor, pooling: Pooling) -> Tensor:
    if x.is_complex():
        raise TypeError(f"Layer output must be real, got dtype {x.dtype}.")
    if x.ndim == 0:
        raise ValueError("Layer output is a scalar (shape ()); it has no batch dimension to pool over.")
    if not x.is_floating_point():
        x = x.float()
    batch = x.shape[0]
    if callable(pooling):
        out = pooling(x)
        if not isinstance(out, Tensor) or out.ndim != 2 or out.shape[0] != batch:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"The pooling callable must return a 2-D tensor with {batch} rows for an input of shape"
                f" {tuple(x.shape)}, got {got}."
            )
        return out
    if x.ndim == 1:
        return x.unsqueeze(1)
    if x.ndim == 2:
        return x
    if pooling == "flatten":
        return x.flatten(1)
    if pooling == "mean":
        return x.mean(dim=tuple(range(2, x.ndim)), dtype=torch.float32)
    if x.ndim != 3:
        raise ValueError(
            f"pooling={pooling!r} expects a (batch, tokens, features) output, got shape {tuple(x.shape)}."
            " Use 'mean' for channels-first feature maps or 'flatten'."
        )
    if pooling == "tokens_mean":
        return x.mean(dim=1, dtype=torch.float32)
    return x[:, 0]  # "cls"


def pool(output: Any, pooling: Pooling = "flatten") -> Tensor:
    """Turn a layer output into a detached ``(B, D)`` float32 tensor.

    See the module docstring for which tensor is taken from tuple, mapping and dataclass outputs, and for the
    exact meaning of each pooling mode.

    Args:
        output: what a module's ``forward`` returned.
        pooling: one of ``"flatten"``, ``"mean"``, ``"tokens_mean"``, ``"cls"``, or a callable mapping the
            selected tensor to a 2-D tensor with one row per sample.

    Returns:
        A detached ``float32`` tensor of shape ``(B, D)`` on the output's device.

    Raises:
        TypeError: if no tensor can be taken from ``output``, or it is complex.
        ValueError: for an unknown pooling name, a shape the mode does not accept, or a callable returning
            something other than ``(B, D)``.

    Example:
        >>> feature_map = torch.ones(8, 16, 5, 5, dtype=torch.bfloat16)
        >>> pooled = pool(feature_map, "mean")
        >>> pooled.shape, pooled.dtype
        (torch.Size([8, 16]), torch.float32)
        >>> tokens = torch.randn(8, 10, 32)
        >>> pool(tokens, "cls").shape, pool(tokens, "tokens_mean").shape, pool(tokens, "flatten").shape
        (torch.Size([8, 32]), torch.Size([8, 32]), torch.Size([8, 320]))
        >>> pool(torch.zeros(8), "cls").shape
        torch.Size([8, 1])

    """
    _check_pooling(pooling)
    with torch.no_grad():
        pooled = _pool_tensor(select_tensor(output).detach(), pooling)
        return pooled.detach().to(torch.float32)


class Capture:
    """Pooled outputs of the watched layers, accumulated over the forward passes of a :func:`capture` block.

    Each hook call appends one ``(B, D)`` float32 CPU tensor to its layer's list; :meth:`take` concatenates and
    clears them.

    Args:
        names: the watched layer names.
        pooling: pooling applied to each output, see :func:`pool`.

    Example:
        >>> cap = Capture(["fc"])
        >>> cap.record("fc", torch.ones(2, 3))
        >>> cap.record("fc", (torch.zeros(1, 3),))
        >>> cap.counts()
        {'fc': 2}
        >>> cap.take()["fc"].shape
        torch.Size([3, 3])
        >>> cap.counts()
        {'fc': 0}

    """

    def __init__(self, names: Iterable[str], pooling: Pooling = "flatten") -> None:
        _check_pooling(pooling)
        self.pooling = pooling
        self._outputs: dict[str, list[Tensor]] = {name: [] for name in names}

    @property
    def names(self) -> tuple[str, ...]:
        """The watched layer names, in order."""
        return tuple(self._outputs)

    def record(self, name: str, output: Any) -> None:
        """Pool one output of layer ``name`` and store it on the CPU.

        Raises:
            TypeError: re-raised from :func:`pool`, with the layer name added.
            ValueError: re-raised from :func:`pool`, with the layer name added.

        """
        try:
            pooled = pool(output, self.pooling)
        except (TypeError, ValueError) as err:
            raise type(err)(f"Layer {name!r}: {err}") from err
        self._outputs[name].append(pooled.cpu())

    def counts(self) -> dict[str, int]:
        """How many outputs each layer has recorded since the last :meth:`take`."""
        return {name: len(chunks) for name, chunks in self._outputs.items()}

    def rows(self) -> dict[str, int]:
        """Deprecated (removed in 0.3): how many rows each layer has recorded since the last :meth:`take`."""
        warnings.warn(
            "Capture.rows() is deprecated and will be removed in 0.3; sum the row counts of `take()`'s tensors "
            "instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        return {name: sum(c.shape[0] for c in chunks) for name, chunks in self._outputs.items()}

    def take(self) -> dict[str, Tensor]:
        """Concatenate and clear the recorded outputs.

        Returns:
            ``{name: (N, D) float32 CPU tensor}``.

        Raises:
            ProbeConfigurationError: if a layer recorded nothing, or its outputs do not share a feature dimension.

        """
        missing = [name for name, chunks in self._outputs.items() if not chunks]
        if missing:
            raise ProbeConfigurationError(_no_output_message(missing[0]))
        out: dict[str, Tensor] = {}
        for name, chunks in self._outputs.items():
            dims = sorted({c.shape[1] for c in chunks})
            if len(dims) > 1:
                raise ProbeConfigurationError(
                    f"Layer {name!r} produced outputs of different feature sizes {dims} across batches; use a pooling"
                    " that gives a fixed size (e.g. 'mean' for variable-sized images)."
                )
            out[name] = torch.cat(chunks)
            chunks.clear()
        return out


def _no_output_message(name: str) -> str:
    return (
        f"Layer {name!r} produced no output during the probe pass: is it used in forward()? (A module that only runs"
        " in training_step or is skipped by a branch never fires when the model is called; nor do hooks inside a"
        " torch.compile'd model probed with force_eager=False.)"
    )


def _set_stance_force_eager() -> contextlib.AbstractContextManager[Any]:
    set_stance = getattr(getattr(torch, "compiler", None), "set_stance", None)
    if set_stance is None:  # torch < 2.6
        return contextlib.nullcontext()
    return set_stance("force_eager")


@contextlib.contextmanager
def capture(
    model: nn.Module,
    layers: Mapping[str, nn.Module],
    pooling: Pooling = "flatten",
    precision_context: contextlib.AbstractContextManager[Any] | None = None,
    *,
    force_eager: bool = True,
) -> Iterator[Capture]:
    """Watch ``layers`` while the caller runs forward passes of ``model`` in eval mode without gradients.

    On entry the ``training`` flag of every submodule is recorded, ``model.eval()`` is called, a forward hook is
    registered on each layer, and ``torch.no_grad()`` and then ``precision_context`` are entered. On exit, also
    when the block raises, every hook is removed and every flag restored exactly.

    Args:
        model: the model the caller runs; its modes are switched and restored.
        layers: ``{name: submodule}``, e.g. from :func:`resolve_layers`.
        pooling: see :func:`pool`.
        precision_context: entered inside ``no_grad``, e.g. ``trainer.precision_plugin.forward_context()`` so that
            the probe runs in the training precision.
        force_eager: run compiled code eagerly (``torch.compiler.set_stance("force_eager")``) so that hooks fire
            inside ``torch.compile``d modules; see the module docstring.

    Yields:
        The :class:`Capture` collecting the pooled outputs.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2)).train()
        >>> with capture(net, {"hidden": net[0]}) as cap:
        ...     _ = net(torch.randn(5, 4))
        >>> cap.take()["hidden"].shape, net.training, net[0]._forward_hooks
        (torch.Size([5, 8]), True, OrderedDict())

    """
    _check_pooling(pooling)
    cap = Capture(layers, pooling)
    modes = [(module, module.training) for module in model.modules()]
    with contextlib.ExitStack() as stack:

        def restore_modes() -> None:
            for module, training in modes:
                module.training = training

        stack.callback(restore_modes)
        model.eval()
        for name, module in layers.items():
            handle = module.register_forward_hook(_make_hook(cap, name))
            stack.callback(handle.remove)
        stack.enter_context(torch.no_grad())
        if precision_context is not None:
            stack.enter_context(precision_context)
        if force_eager:
            stack.enter_context(_set_stance_force_eager())
        yield cap


def _make_hook(cap: Capture, name: str) -> Callable[[nn.Module, Any, Any], None]:
    def hook(module: nn.Module, args: Any, output: Any) -> None:
        cap.record(name, output)

    return hook


def _is_label_vector(value: Any, inputs: Any) -> bool:
    if not isinstance(value, Tensor) or value.ndim != 1:
        return False
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        return False
    return not (isinstance(inputs, Tensor) and inputs.ndim >= 1 and inputs.shape[0] != value.shape[0])


def split_batch(batch: Any) -> tuple[Any, Tensor | None]:
    """Split a batch into model inputs and (optional) integer class labels, by the default rule.

    - ``tuple``/``list``: inputs ``batch[0]``; labels ``batch[1]`` if it is a 1-D integer tensor with as many
      entries as the inputs have rows.
    - ``dict``: inputs under the first present key of ``"x"``, ``"input"``, ``"inputs"``, ``"image"``,
      ``"pixel_values"``; if none is present, the whole dict without its label entry is the input. Labels under the
      first of ``"y"``, ``"label"``, ``"labels"``, ``"target"`` that holds a 1-D integer tensor.
    - anything else (a tensor): inputs ``batch``, no labels.

    Args:
        batch: one batch from a data loader.

    Returns:
        ``(inputs, labels)`` with ``labels`` ``None`` when the batch has none.

    Raises:
        ValueError: for an empty tuple/list batch.

    Example:
        >>> x, y = torch.randn(4, 3), torch.tensor([0, 1, 1, 0])
        >>> split_batch((x, y))[1]
        tensor([0, 1, 1, 0])
        >>> split_batch([x, torch.randn(4)])[1] is None  # float targets are not class labels
        True
        >>> inputs, labels = split_batch({"input_ids": x, "labels": y})
        >>> sorted(inputs), labels.shape
        (['input_ids'], torch.Size([4]))

    """
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError("Cannot take inputs from an empty batch.")
        inputs = batch[0]
        labels = batch[1] if len(batch) > 1 and _is_label_vector(batch[1], inputs) else None
        return inputs, labels
    if isinstance(batch, Mapping):
        input_key = next((k for k in _INPUT_KEYS if k in batch), None)
        label_key = next((k for k in _LABEL_KEYS if k in batch), None)
        inputs = batch[input_key] if input_key is not None else {k: v for k, v in batch.items() if k != label_key}
        label_value = batch[label_key] if label_key is not None else None
        return inputs, label_value if _is_label_vector(label_value, inputs) else None
    return batch, None


def lightning_transfer(trainer: Any, pl_module: Any) -> Callable[[Any], Any]:
    """The batch preparation of Lightning's own loops, for probe batches taken straight from a dataset.

    Lightning's training and evaluation loops call, in this order, ``trainer.precision_plugin.convert_input``
    (``"64-true"`` makes inputs float64, ``"bf16-true"``/``"16-true"`` make them half precision), the module's
    ``on_before_batch_transfer`` hook and ``trainer.strategy.batch_to_device`` (``transfer_batch_to_device`` and
    ``on_after_batch_transfer``). A probe batch must go through the same steps, or the model sees inputs of
    another dtype or device than in training.

    Args:
        trainer: the running ``Trainer``.
        pl_module: its ``LightningModule``.

    Returns:
        ``transfer(batch) -> batch`` for :func:`embed_batches` / :func:`embed_inputs`.

    """

    def transfer(batch: Any) -> Any:
        batch = trainer.precision_plugin.convert_input(batch)
        batch = pl_module._on_before_batch_transfer(batch, dataloader_idx=0)
        return trainer.strategy.batch_to_device(batch, dataloader_idx=0)

    return transfer


def default_forward(pl_module: nn.Module, batch: Any) -> None:
    """Run the default probe forward pass: ``pl_module(inputs)`` with ``inputs`` from :func:`split_batch`.

    For a dict batch without a known input key the remaining dict is passed as one positional argument. Models
    whose ``forward`` takes several arguments or keywords need a custom ``forward_fn``.

    Args:
        pl_module: the module to call.
        batch: one batch, already on the module's device.

    Example:
        >>> default_forward(nn.Linear(3, 2), (torch.randn(4, 3), torch.tensor([0, 1, 0, 1])))

    """
    inputs, _ = split_batch(batch)
    pl_module(inputs)


def _check_batch_records(cap: Capture, before: dict[str, int], labels: Tensor | None, index: int) -> None:
    """Check that each layer fired once with the same number of rows during the forward of batch ``index``."""
    counts = cap.counts()
    rows: dict[str, int] = {}
    for name in cap.names:
        calls = counts[name] - before[name]
        if calls == 0:
            raise ProbeConfigurationError(_no_output_message(name))
        if calls > 1:
            raise ProbeConfigurationError(
                f"Layer {name!r} ran {calls} times during one probe forward pass (batch {index}); its outputs cannot"
                " be matched to samples. Watch a module that runs once per forward, or pass a `forward_fn`."
            )
        rows[name] = cap._outputs[name][-1].shape[0]
    expected = labels.shape[0] if labels is not None else next(iter(rows.values()))
    wrong = {name: n for name, n in rows.items() if n != expected}
    if wrong:
        raise ProbeConfigurationError(
            f"Layers gave different numbers of rows for batch {index}: {rows}"
            + (f" with {expected} labels" if labels is not None else "")
            + ". Is every watched output batch-first (e.g. `batch_first=True` for RNNs/transformers)?"
        )


def embed_batches(
    model: nn.Module,
    batches: Iterable[Any],
    layers: Mapping[str, nn.Module],
    *,
    pooling: Pooling = "flatten",
    forward_fn: Callable[[nn.Module, Any], Any] | None = None,
    transfer_fn: Callable[[Any], Any] | None = None,
    precision_context: contextlib.AbstractContextManager[Any] | None = None,
    force_eager: bool = True,
) -> tuple[dict[str, Tensor], Tensor | None]:
    """Run ``batches`` through ``model`` inside :func:`capture` and return the pooled layer outputs.

    Args:
        model: the model, passed to ``forward_fn``.
        batches: the probe batches, in a fixed order.
        layers: ``{name: submodule}``, e.g. from :func:`resolve_layers`.
        pooling: see :func:`pool`.
        forward_fn: ``forward_fn(model, batch)`` runs one forward pass; default :func:`default_forward`.
        transfer_fn: moves a batch to the model's device, e.g. a LightningModule's
            ``_apply_batch_transfer_handler``; default identity. Labels are read from the transferred batch.
        precision_context: see :func:`capture`; entered once for all batches.
        force_eager: see :func:`capture`.

    Returns:
        ``({name: (N, D) float32 CPU tensor}, labels)`` where ``labels`` is the ``(N,)`` int64 CPU tensor of
        concatenated labels (see :func:`split_batch`), or ``None`` if any batch has none.

    Raises:
        ValueError: if ``batches`` is empty.
        RuntimeError: if a layer produced no output, ran more than once in one forward pass, or layers disagree on
            the number of rows.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2))
        >>> data = [(torch.randn(5, 3, 8, 8), torch.randint(0, 2, (5,))) for _ in range(3)]
        >>> feats, labels = embed_batches(net, data, resolve_layers(net, "0"), pooling="mean")
        >>> feats["0"].shape, labels.shape
        (torch.Size([15, 4]), torch.Size([15]))

    """
    forward = forward_fn if forward_fn is not None else default_forward
    transfer = transfer_fn if transfer_fn is not None else (lambda batch: batch)
    labels: list[Tensor] | None = []
    num_batches = 0
    with capture(model, layers, pooling, precision_context, force_eager=force_eager) as cap:
        for index, raw_batch in enumerate(batches):
            batch = transfer(raw_batch)
            _, batch_labels = split_batch(batch)
            before = cap.counts()
            forward(model, batch)
            _check_batch_records(cap, before, batch_labels, index)
            if labels is not None and batch_labels is not None:
                labels.append(batch_labels.detach().to("cpu", torch.int64))
            else:
                labels = None
            num_batches += 1
    if num_batches == 0:
        raise ValueError("`batches` is empty: there is nothing to embed.")
    return cap.take(), torch.cat(labels) if labels is not None else None


def embed_inputs(
    batches: Iterable[Any], *, transfer_fn: Callable[[Any], Any] | None = None
) -> tuple[Tensor, Tensor | None]:
    """The raw inputs of ``batches`` (by :func:`split_batch`), flattened to ``(N, D)`` float32 CPU rows.

    Used when the gap is measured in data space, e.g. between held-out data and a generator's samples.

    Args:
        batches: the probe batches, in a fixed order.
        transfer_fn: applied to each batch first (e.g. the LightningModule's batch-transfer hooks).

    Returns:
        ``(inputs, labels)``; ``labels`` is ``None`` unless every batch carries integer labels.

    Raises:
        ValueError: if ``batches`` is empty.
        TypeError: if the inputs of a batch are not a tensor.

    Example:
        >>> data = [(torch.randn(5, 2, 3), torch.randint(0, 2, (5,))) for _ in range(2)]
        >>> x, y = embed_inputs(data)
        >>> x.shape, y.shape
        (torch.Size([10, 6]), torch.Size([10]))

    """
    transfer = transfer_fn if transfer_fn is not None else (lambda batch: batch)
    rows: list[Tensor] = []
    labels: list[Tensor] | None = []
    for raw_batch in batches:
        inputs, batch_labels = split_batch(transfer(raw_batch))
        if not isinstance(inputs, Tensor):
            raise TypeError(f"Measuring in data space needs tensor inputs, got {type(inputs).__name__}.")
        rows.append(inputs.detach().reshape(inputs.shape[0], -1).to("cpu", torch.float32))
        if labels is not None and batch_labels is not None:
            labels.append(batch_labels.detach().to("cpu", torch.int64))
        else:
            labels = None
    if not rows:
        raise ValueError("`batches` is empty: there is nothing to embed.")
    return torch.cat(rows), torch.cat(labels) if labels is not None else None
