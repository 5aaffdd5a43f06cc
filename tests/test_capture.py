"""Tests for lightning_repgap.capture: names, pooling, hook/mode hygiene, probe passes."""

from __future__ import annotations

import contextlib
import dataclasses
from collections import OrderedDict
from collections.abc import Iterator

import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_repgap.capture import (
    POOLINGS,
    Capture,
    capture,
    default_forward,
    embed_batches,
    normalize_layer_name,
    pool,
    resolve_layers,
    split_batch,
)


class Net(nn.Module):
    """Small CNN: backbone (conv + bn + dropout), frozen eval-mode block, head."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Dropout(0.5))
        self.frozen = nn.Sequential(nn.Conv2d(6, 4, 1), nn.BatchNorm2d(4))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(4, 3)
        self.unused = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.frozen(self.backbone(x))).flatten(1))


def make_net() -> Net:
    torch.manual_seed(0)
    net = Net().train()
    net.frozen.eval()  # a deliberately frozen part inside a model in train mode
    return net


def training_flags(model: nn.Module) -> dict[str, bool]:
    return {name: m.training for name, m in model.named_modules()}


def all_hooks(model: nn.Module) -> list[object]:
    return [h for m in model.modules() for h in (*m._forward_hooks.values(), *m._forward_pre_hooks.values())]


class DDPLike(nn.Module):
    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


class CompiledLike(nn.Module):
    """What torch.compile returns, as far as names go: the model under `_orig_mod`."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self._orig_mod = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._orig_mod(x)


# --------------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("backbone", "backbone"),
        ("_orig_mod.backbone.0", "backbone.0"),
        ("module.backbone", "backbone"),
        ("_forward_module.module._orig_mod.head", "head"),
        ("module.module.head", "head"),
        ("model._orig_mod.layer1", "model.layer1"),
        ("encoder.module", "encoder.module"),  # `module` deeper in a path is a user attribute
        ("module", ""),
        ("", ""),
    ],
)
def test_normalize_layer_name(raw, expected):
    assert normalize_layer_name(raw) == expected


def test_resolve_plain_names():
    net = make_net()
    layers = resolve_layers(net, ["backbone", "frozen.0", "head"])
    assert list(layers) == ["backbone", "frozen.0", "head"]
    assert layers["backbone"] is net.backbone
    assert layers["frozen.0"] is net.frozen[0]
    assert resolve_layers(net, "head") == {"head": net.head}


@pytest.mark.parametrize("wrapper", [DDPLike, CompiledLike, lambda m: DDPLike(CompiledLike(m))])
def test_resolve_through_wrappers(wrapper):
    net = make_net()
    wrapped = wrapper(net)
    assert resolve_layers(wrapped, "backbone")["backbone"] is net.backbone
    # a name copied from the wrapped model also works on the wrapped and on the bare model
    raw = next(n for n, m in wrapped.named_modules() if m is net.head)
    assert resolve_layers(wrapped, raw) == {"head": net.head}
    assert resolve_layers(net, raw) == {"head": net.head}


def test_resolve_real_torch_compile():
    net = make_net()
    compiled = torch.compile(net, backend="eager")
    assert any(n.startswith("_orig_mod.") for n, _ in compiled.named_modules())
    assert resolve_layers(compiled, ["backbone", "head"]) == {"backbone": net.backbone, "head": net.head}


def test_unknown_layer_lists_valid_names_closest_first():
    net = make_net()
    with pytest.raises(MisconfigurationException, match="not a submodule") as err:
        resolve_layers(net, "backbon")
    message = str(err.value)
    assert "Did you mean 'backbone'?" in message
    for name in ("backbone", "frozen", "head", "unused", "backbone.0"):
        assert repr(name) in message
    assert message.index("'backbone'") < message.index("'unused'")


def test_unknown_layer_suggests_full_path_for_leaf_name():
    net = make_net()
    with pytest.raises(MisconfigurationException, match=r"closest first\): 'backbone\.1', 'frozen\.1', 'backbone'"):
        resolve_layers(net, "1")  # a leaf name suggests every full path ending with it, first
    with pytest.raises(MisconfigurationException, match="Did you mean 'backbone'"):
        resolve_layers(DDPLike(net), "module.backbone_")


def test_unknown_layer_message_is_truncated_for_huge_models():
    big = nn.Sequential(*[nn.Linear(2, 2) for _ in range(500)])
    with pytest.raises(MisconfigurationException, match="more; print `model`") as err:
        resolve_layers(big, "encoder")
    assert len(str(err.value)) < 2000


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        (["head", "head"], "more than once"),
        (["head", "module.head"], "more than once"),
        ([], "at least one"),
        ("", "whole model"),
        (["module"], "whole model"),
    ],
)
def test_resolve_rejects_bad_names(layers, match):
    with pytest.raises(MisconfigurationException, match=match):
        resolve_layers(make_net(), layers)


def test_resolve_rejects_non_strings():
    with pytest.raises(TypeError, match="sequence of strings"):
        resolve_layers(make_net(), ["head", 3])  # type: ignore[list-item]


def test_resolve_ambiguous_after_normalisation():
    model = nn.Module()
    model.head = nn.Linear(2, 2)
    model.module = nn.Module()
    model.module.head = nn.Linear(2, 2)  # a user attribute literally called `module`
    assert resolve_layers(model, "module.head")["head"] is model.module.head  # exact name wins
    with pytest.raises(MisconfigurationException, match="ambiguous"):
        resolve_layers(DDPLike(model), "_orig_mod.head")


# --------------------------------------------------------------------------------------------------- pooling


@dataclasses.dataclass
class FakeModelOutput:
    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor


@dataclasses.dataclass
class OneTensor:
    features: torch.Tensor
    note: str = "x"


@pytest.mark.parametrize(
    ("pooling", "shape", "expected"),
    [
        ("flatten", (4, 3, 5, 6), (4, 90)),
        ("mean", (4, 3, 5, 6), (4, 3)),
        ("mean", (4, 3, 5, 6, 2), (4, 3)),
        ("mean", (4, 7, 16), (4, 7)),  # channels-first rule, documented
        ("tokens_mean", (4, 7, 16), (4, 16)),
        ("cls", (4, 7, 16), (4, 16)),
        ("flatten", (4, 7, 16), (4, 112)),
        ("flatten", (0, 7, 16), (0, 112)),
    ],
)
def test_pool_shapes(pooling, shape, expected):
    assert pool(torch.randn(*shape), pooling).shape == expected


def test_pool_values():
    x = torch.randn(4, 3, 5, 6)
    torch.testing.assert_close(pool(x, "mean"), x.mean(dim=(2, 3)))
    torch.testing.assert_close(pool(x, "flatten"), x.reshape(4, -1))
    tokens = torch.randn(2, 5, 8)
    torch.testing.assert_close(pool(tokens, "cls"), tokens[:, 0])
    torch.testing.assert_close(pool(tokens, "tokens_mean"), tokens.mean(dim=1))


@pytest.mark.parametrize("pooling", [*POOLINGS, lambda t: t * 2])
def test_pool_two_dim_passes_through_and_vector_becomes_column(pooling):
    x = torch.randn(5, 7)
    out = pool(x, pooling)
    assert out.shape == (5, 7)
    if isinstance(pooling, str):
        torch.testing.assert_close(out, x)
        assert pool(torch.arange(5.0), pooling).shape == (5, 1)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64, torch.int64])
@pytest.mark.parametrize("pooling", ["flatten", "mean"])
def test_pool_outputs_float32(dtype, pooling):
    x = torch.randint(0, 5, (3, 4, 2, 2)).to(dtype)
    out = pool(x, pooling)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, pool(x.double(), pooling).float())


def test_pool_detaches():
    layer = nn.Linear(3, 4)
    out = pool(layer(torch.randn(2, 3)), "flatten")
    assert not out.requires_grad
    assert out.grad_fn is None


def test_pool_non_tensor_outputs():
    hidden = torch.randn(2, 5, 4)
    lstm_like = (hidden, (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
    torch.testing.assert_close(pool(lstm_like, "cls"), hidden[:, 0])
    torch.testing.assert_close(pool(["not a tensor", hidden], "cls"), hidden[:, 0])
    hf_like = OrderedDict(last_hidden_state=hidden, pooler_output=torch.randn(2, 4))
    torch.testing.assert_close(pool(hf_like, "tokens_mean"), hidden.mean(1))
    torch.testing.assert_close(pool({"logits": hidden, "loss": None}, "cls"), hidden[:, 0])
    torch.testing.assert_close(pool(FakeModelOutput(hidden, torch.randn(2, 4)), "cls"), hidden[:, 0])
    torch.testing.assert_close(pool(OneTensor(hidden), "cls"), hidden[:, 0])


def test_pool_non_tensor_errors():
    with pytest.raises(TypeError, match=r"keys \['a', 'b'\]"):
        pool({"a": torch.zeros(2, 2), "b": torch.zeros(2, 2)})
    with pytest.raises(TypeError, match="no tensor element"):
        pool((1, "x"))
    with pytest.raises(TypeError, match="of type str"):
        pool("hello")
    with pytest.raises(TypeError, match="real"):
        pool(torch.zeros(2, 2, dtype=torch.complex64))


def test_pool_bad_modes():
    with pytest.raises(ValueError, match=r"one of \['flatten', 'mean', 'tokens_mean', 'cls'\]"):
        pool(torch.zeros(2, 3), "avg")
    with pytest.raises(ValueError, match="expects a \\(batch, tokens, features\\)"):
        pool(torch.zeros(2, 3, 4, 4), "cls")
    with pytest.raises(ValueError, match="expects a \\(batch, tokens, features\\)"):
        pool(torch.zeros(2, 3, 4, 4), "tokens_mean")
    with pytest.raises(ValueError, match="scalar"):
        pool(torch.tensor(1.0))
    with pytest.raises(ValueError, match="2-D tensor with 2 rows"):
        pool(torch.zeros(2, 3, 4), lambda t: t.mean())
    with pytest.raises(ValueError, match="2-D tensor with 2 rows"):
        pool(torch.zeros(2, 3, 4), lambda t: t.reshape(-1, 2))


def test_pool_callable():
    x = torch.randn(2, 3, 4, 4, dtype=torch.float16)
    out = pool(x, lambda t: t.amax(dim=(2, 3)))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, x.amax(dim=(2, 3)).float())


# --------------------------------------------------------------------------------------------------- capture


def test_capture_restores_modes_and_removes_hooks():
    net = make_net()
    before = training_flags(net)
    assert before["backbone"]
    assert not before["frozen"]
    assert not before["frozen.1"]
    layers = resolve_layers(net, ["backbone", "frozen.1", "head"])
    with capture(net, layers, pooling="mean") as cap:
        assert not any(training_flags(net).values())
        assert len(all_hooks(net)) == 3
        assert not torch.is_grad_enabled()
        out = net(torch.randn(4, 3, 8, 8))
        assert not out.requires_grad
    assert training_flags(net) == before
    assert all_hooks(net) == []
    assert torch.is_grad_enabled()
    feats = cap.take()
    assert {k: tuple(v.shape) for k, v in feats.items()} == {"backbone": (4, 6), "frozen.1": (4, 4), "head": (4, 3)}
    assert all(v.dtype == torch.float32 and v.device.type == "cpu" and not v.requires_grad for v in feats.values())


def test_capture_restores_eval_model_with_train_submodule():
    net = make_net().eval()
    net.backbone[3].train()  # e.g. MC dropout kept on inside an eval model
    before = training_flags(net)
    with capture(net, resolve_layers(net, "head")):
        net(torch.randn(2, 3, 8, 8))
    assert training_flags(net) == before


def test_capture_cleans_up_when_forward_raises():
    net = make_net()
    before = training_flags(net)
    with (
        pytest.raises(RuntimeError, match=r"channels"),
        capture(net, resolve_layers(net, ["backbone", "head"])),
    ):
        net(torch.randn(2, 5, 8, 8))  # wrong number of channels
    assert training_flags(net) == before
    assert all_hooks(net) == []
    assert torch.is_grad_enabled()


def test_capture_cleans_up_when_pooling_fails_inside_hook():
    net = make_net()
    before = training_flags(net)
    with (
        pytest.raises(ValueError, match="Layer 'backbone': pooling='cls'"),
        capture(net, resolve_layers(net, "backbone"), pooling="cls"),
    ):
        net(torch.randn(2, 3, 8, 8))
    assert training_flags(net) == before
    assert all_hooks(net) == []


def test_capture_eval_mode_freezes_batchnorm_and_dropout():
    net = make_net()
    stats = net.backbone[1].running_mean.clone()
    x = torch.randn(4, 3, 8, 8)
    with capture(net, resolve_layers(net, "backbone")) as cap:
        net(x)
        net(x)
    first, second = cap.take()["backbone"].split(4)
    torch.testing.assert_close(first, second)  # dropout off
    torch.testing.assert_close(net.backbone[1].running_mean, stats)  # batch norm statistics untouched


def test_capture_enters_precision_context_inside_no_grad():
    events: list[str] = []

    @contextlib.contextmanager
    def ctx() -> Iterator[None]:
        events.append(f"enter grad={torch.is_grad_enabled()}")
        yield
        events.append("exit")

    net = make_net()
    with capture(net, resolve_layers(net, "head"), precision_context=ctx()):
        events.append("body")
        net(torch.randn(1, 3, 4, 4))
    assert events == ["enter grad=False", "body", "exit"]


def test_capture_under_bf16_autocast_gives_float32():
    net = make_net()
    plugin = MixedPrecision("bf16-mixed", "cpu")
    seen: list[torch.dtype] = []
    handle = net.head.register_forward_hook(lambda m, a, o: seen.append(o.dtype))
    try:
        with capture(net, resolve_layers(net, ["head", "backbone"]), "mean", plugin.forward_context()) as cap:
            net(torch.randn(2, 3, 8, 8))
    finally:
        handle.remove()
    assert seen == [torch.bfloat16]  # the forward really ran in bf16
    assert all(v.dtype == torch.float32 for v in cap.take().values())


def test_capture_take_reports_silent_layer():
    net = make_net()
    with capture(net, resolve_layers(net, ["head", "unused"])) as cap:
        net(torch.randn(2, 3, 4, 4))
    with pytest.raises(RuntimeError, match="Layer 'unused' produced no output during the probe pass"):
        cap.take()


def _rows(cap: Capture) -> dict[str, int]:
    """How many rows each layer has recorded since the last ``take`` (was ``Capture.rows``, used only here)."""
    return {name: sum(c.shape[0] for c in chunks) for name, chunks in cap._outputs.items()}


def test_capture_object_accumulates_and_clears():
    cap = Capture(["a"], "mean")
    cap.record("a", torch.ones(2, 3, 4))
    cap.record("a", torch.ones(3, 3, 4, dtype=torch.float16))
    assert _rows(cap) == {"a": 5}
    assert cap.take()["a"].shape == (5, 3)
    assert cap.counts() == {"a": 0}
    cap.record("a", torch.ones(2, 4))
    cap.record("a", torch.ones(2, 5))
    with pytest.raises(RuntimeError, match="different feature sizes"):
        cap.take()


# --------------------------------------------------------------------------------------------------- batches


def test_split_batch_rules():
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    assert split_batch(x) == (x, None)
    assert split_batch((x, y))[1] is y
    assert split_batch([x, y, "meta"])[1] is y
    assert split_batch((x, y.float()))[1] is None  # regression targets are not labels
    assert split_batch((x, y[:3]))[1] is None  # wrong length
    assert split_batch((x, y.reshape(2, 2)))[1] is None
    assert split_batch((x, y > 0))[1] is None  # bool masks are not labels
    assert split_batch((x,)) == (x, None)
    inputs, labels = split_batch({"image": x, "target": y, "x": x + 1})
    assert torch.equal(inputs, x + 1)  # "x" wins over "image"
    assert labels is y
    inputs, labels = split_batch({"input_ids": x, "attention_mask": x, "labels": y})
    assert set(inputs) == {"input_ids", "attention_mask"}
    assert labels is y
    assert split_batch({"pixel_values": x, "label": torch.tensor(3)})[1] is None
    with pytest.raises(ValueError, match="empty batch"):
        split_batch(())


def test_default_forward_calls_module_with_inputs():
    calls: list[object] = []

    class Recorder(nn.Module):
        def forward(self, inputs: object) -> torch.Tensor:
            calls.append(inputs)
            return torch.zeros(1)

    x = torch.randn(2, 3)
    default_forward(Recorder(), (x, torch.tensor([1, 0])))
    default_forward(Recorder(), {"inputs": x, "y": torch.tensor([1, 0])})
    assert calls[0] is x
    assert calls[1] is x


def test_embed_batches_concatenates_in_order():
    net = make_net()
    torch.manual_seed(1)
    data = [(torch.randn(n, 3, 8, 8), torch.randint(0, 3, (n,))) for n in (5, 3, 4)]
    before = training_flags(net)
    feats, labels = embed_batches(net, data, resolve_layers(net, ["backbone", "head"]), pooling="mean")
    assert feats["backbone"].shape == (12, 6)
    assert feats["head"].shape == (12, 3)
    assert torch.equal(labels, torch.cat([y for _, y in data]))
    assert labels.dtype == torch.int64
    assert training_flags(net) == before
    assert all_hooks(net) == []
    # the rows are the eval-mode outputs of each sample, in order
    net.eval()
    with torch.no_grad():
        expected = torch.cat([net(x) for x, _ in data])
    torch.testing.assert_close(feats["head"], expected)


def test_embed_batches_labels_none_if_any_batch_lacks_them():
    net = make_net()
    data = [(torch.randn(2, 3, 4, 4), torch.tensor([0, 1])), (torch.randn(2, 3, 4, 4),)]
    feats, labels = embed_batches(net, data, resolve_layers(net, "head"))
    assert labels is None
    assert feats["head"].shape == (4, 3)


def test_embed_batches_uses_transfer_and_forward_fn():
    net = make_net()
    transferred: list[int] = []

    def transfer(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        transferred.append(len(batch["img"]))
        return {**batch, "img": batch["img"] * 0}

    def forward(model: nn.Module, batch: dict[str, torch.Tensor]) -> None:
        model(batch["img"])

    data = [{"img": torch.randn(3, 3, 4, 4), "labels": torch.tensor([1, 2, 0])}]
    feats, labels = embed_batches(net, data, resolve_layers(net, "frozen"), pooling="flatten", forward_fn=forward,
                                  transfer_fn=transfer)  # fmt: skip
    assert transferred == [3]
    assert labels.tolist() == [1, 2, 0]
    assert torch.allclose(feats["frozen"], feats["frozen"][0])  # zero inputs: identical rows


def test_embed_batches_errors():
    net = make_net()
    data = [(torch.randn(2, 3, 4, 4), torch.tensor([0, 1]))]
    with pytest.raises(RuntimeError, match=r"Layer 'unused' produced no output .*is it used in forward\(\)\?"):
        embed_batches(net, data, resolve_layers(net, ["head", "unused"]))
    assert all_hooks(net) == []
    with pytest.raises(RuntimeError, match="ran 2 times"):
        embed_batches(net, data, resolve_layers(net, "head"), forward_fn=lambda m, b: (m(b[0]), m(b[0])))
    with pytest.raises(ValueError, match="empty"):
        embed_batches(net, [], resolve_layers(net, "head"))


def test_embed_batches_detects_sequence_first_outputs():
    class SeqFirst(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(4, 6)  # batch_first=False: (T, B, D) in and out
            self.proj = nn.Linear(4, 6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.rnn(x.transpose(0, 1))[0].transpose(0, 1) + self.proj(x)

    model = SeqFirst()
    data = [(torch.randn(2, 7, 4), torch.tensor([0, 1]))]
    feats, _ = embed_batches(model, data, resolve_layers(model, "proj"), pooling="tokens_mean")
    assert feats["proj"].shape == (2, 6)
    with pytest.raises(RuntimeError, match=r"\{'rnn': 7\} with 2 labels.*batch-first"):
        embed_batches(model, data, resolve_layers(model, "rnn"), pooling="tokens_mean")
    with pytest.raises(RuntimeError, match=r"\{'proj': 2, 'rnn': 7\}.*batch-first"):
        embed_batches(model, [data[0][0]], resolve_layers(model, ["proj", "rnn"]), pooling="tokens_mean")


def compiled_after_validation() -> tuple[Net, nn.Module, torch.Tensor]:
    """A compiled model whose eval/no-grad graph already exists, as after a compiled validation loop."""
    net = make_net()
    compiled = torch.compile(net, backend="eager")
    x = torch.randn(3, 3, 8, 8)
    compiled.eval()
    with torch.no_grad():
        compiled(x)
    compiled.train()
    net.frozen.eval()
    return net, compiled, x


def test_embed_batches_through_torch_compile_fires_hooks():
    net, compiled, x = compiled_after_validation()
    layers = resolve_layers(compiled, ["backbone", "head"])
    feats, _ = embed_batches(compiled, [x], layers, pooling="mean")
    assert all_hooks(net) == []
    assert training_flags(net)["backbone"]
    assert not training_flags(net)["frozen"]
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(feats["head"], net(x))


def test_compiled_graph_skips_hooks_without_force_eager():
    """Why `force_eager=True` is the default: dynamo reuses the cached graph, which has no hooks.

    If this starts failing after a torch upgrade, dynamo now honours late hooks and the stance switch is optional.
    """
    _, compiled, x = compiled_after_validation()
    with pytest.raises(RuntimeError, match="produced no output"):
        embed_batches(compiled, [x], resolve_layers(compiled, "head"), force_eager=False)
