"""timm's model API on built modules, tested as timm's own model tests do (tests/test_models.py there: shapes of
forward_features / forward_head, reset_classifier(0) giving pooled features, feature_info reductions against the
real feature maps)."""

import functools

import pytest
import torch

import archc
from archc.analysis import head
from conftest import FORWARD


# One spec per kind of head (the split is found the same way for all; test_specs runs every spec's forward):
# global pooling + linear (resnet), an adaptive pool and an MLP (vgg, alexnet_torchvision, mobilenet_v3), a fixed
# window and no adaptive pool (alexnet_2012), a norm on the pooled map (convnext), dropout before flatten
# (inception_v3), a conv in the head (lenet5), no classifier after the feature maps (squeezenet1_1), none at all
# (unet).
HEADS = ["resnet", "vgg", "alexnet_torchvision", "mobilenet_v3", "alexnet_2012", "convnext", "inception_v3",
         "lenet5", "squeezenet1_1", "densenet_bc100", "unet"]


@functools.cache
def built(stem):
    torch.manual_seed(0)
    return archc.build(stem, **FORWARD.get(stem, {})).eval()


@pytest.mark.parametrize("stem", HEADS)
def test_forward_features_then_head_is_forward(stem):
    m = built(stem)
    x = torch.randn(1, *m.analysis.input_shape)
    with torch.no_grad():
        features = m.forward_features(x)
        assert features.shape[:2] == (1, m.num_features) and features.dim() == 4
        torch.testing.assert_close(m.forward_head(features), m(x), rtol=0, atol=0)
        pre = m.forward_head(features, pre_logits=True)
    assert pre.shape[:2] == (1, m.head_hidden_size)
    assert m.num_classes == m.analysis.outputs[0]["shape"][0]
    info = m.feature_info
    assert info.channels() == [m.num_features]
    if m.name != "unet":  # (U-Net takes tiles of a few sizes only)
        r = info.reduction(0)  # the feature map's stride in input pixels: 2r more pixels, 2 more positions
        bigger = torch.randn(1, x.shape[1], x.shape[2] + 2 * r, x.shape[3] + 2 * r)
        with torch.no_grad():
            assert m.forward_features(bigger).shape[-2:] == (features.shape[-2] + 2, features.shape[-1] + 2)


def test_reset_classifier_to_pooled_features_and_back():
    m = archc.build("resnet18", size=64).eval()
    x = torch.randn(2, 3, 64, 64)
    backbone = {n: p for n, p in m.named_parameters() if not n.startswith("fc.")}
    with torch.no_grad():
        pooled = m.forward_head(m.forward_features(x), pre_logits=True)
        m.reset_classifier(0)
        assert m.num_classes == 0 and m.get_classifier() is None
        torch.testing.assert_close(m(x), pooled, rtol=0, atol=0)  # forward gives the pooled features
        assert m(x).shape == (2, m.num_features)
        m.reset_classifier(7)
        assert m(x).shape == (2, 7) and m.num_classes == 7 and m.get_classifier().out_features == 7
    assert all(dict(m.named_parameters())[n] is p for n, p in backbone.items()), "the same parameters"
    assert m.analysis.spec.params["classes"] == 7 and m.pretrained_cfg["num_classes"] == 7


def test_a_new_head_trains_with_the_kept_backbone():
    m = archc.build("resnet18", size=32)
    m.reset_classifier(3)
    optimizer = torch.optim.SGD(m.parameters(), lr=0.1)
    before = m.conv1.weight.detach().clone()
    loss = torch.nn.functional.cross_entropy(m(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    optimizer.step()
    assert not torch.equal(before, m.conv1.weight) and m.training


def test_reset_keeps_device_and_dtype_and_mode():
    m = archc.build("resnet18", size=32).double().eval()
    m.reset_classifier(5)
    assert m.get_classifier().weight.dtype == torch.float64 and not m.training
    assert m(torch.randn(1, 3, 32, 32, dtype=torch.float64)).shape == (1, 5)


@pytest.mark.parametrize("name,call,words", [
    ("squeezenet1_1", lambda m: m.reset_classifier(0), "its head holds no classifier to remove"),
    ("resnet18", lambda m: m.reset_classifier(-1), "num_classes is a count"),
    ("resnet18", lambda m: m.reset_classifier(5, global_pool="max"), "reset_classifier takes no global_pool"),
    ("resnet18", lambda m: archc.fuse(m).reset_classifier(5), "reset the classifier of the trained module"),
])
def test_reset_classifier_mistakes(name, call, words):
    m = archc.build(name, **({"size": 32} if name == "resnet18" else {}))
    with pytest.raises(archc.ArchcError, match=words):
        call(m)


def test_a_spec_without_classes_cannot_reset():
    spec = archc.loads("archc: 1\nname: t\ninput: [3, 8, 8]\ngraph:\n  - {conv: {out: 4, k: 3}}\n  - gap\n"
                       "  - flatten\n  - fc: {linear: {out: 5}}\n", "t.yaml")
    m = archc.build(spec)
    assert m.num_classes == 5 and m.get_classifier() is m.fc
    with pytest.raises(archc.ArchcError, match="no `classes` parameter"):
        m.reset_classifier(3)


@pytest.mark.parametrize("name,features", [
    ("resnet50", ["layer1", "layer2", "layer3", "layer4"]),
    ("densenet121", ["features.denseblock1", "features.denseblock2", "features.norm5"]),
    ("convnext_tiny", ["features.1", "features.3", "features.5", "features.7"]),
    ("mobilenet_v3_large", ["features.3", "features.6", "features.12", "features.16"]),
    ("efficientnet_b0", ["features.2", "features.3", "features.5", "features.8"]),
])
def test_feature_info_reductions_match_the_real_feature_maps(name, features):
    m = archc.build(name, size=64, features=features).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = m(x)
    info = m.feature_info
    assert info.module_name() == features
    for f, (key, value) in zip(info, out.items()):
        assert f["module"] == key and value.shape[1] == f["num_chs"]
        assert x.shape[-1] // value.shape[-1] == f["reduction"], (key, value.shape)
    assert info.reduction() == sorted(info.reduction())


def test_pretrained_cfg_states_the_weights_input():
    cfg = archc.build("efficientnet_b3").pretrained_cfg
    assert cfg["input_size"] == (3, 300, 300) and cfg["interpolation"] == "bicubic"
    assert cfg["crop_pct"] == pytest.approx(300 / 320) and cfg["mean"] == (0.485, 0.456, 0.406)
    assert (cfg["classifier"], cfg["first_conv"], cfg["num_classes"]) == ("classifier.1", "features.0.0", 1000)
    assert cfg["top1"] == 82.008 and archc.build("lenet5").pretrained_cfg.get("mean") is None
    assert archc.build("resnet50").default_cfg["pool_size"] == (7, 7)


def test_the_head_is_found_statically():
    """The split is a property of the graph: no torch needed, the same as the module uses."""
    g = archc.analyze("vgg16").graph
    h = head(g)
    assert (h.features, h.classifier, h.pre_logits) == ("features.30", "classifier.6", "classifier.5")
    assert h.nodes[0] == "avgpool"  # the adaptive pool to 7x7 belongs to the head


def test_forward_features_checks_sizes_against_the_feature_layers():
    """Any size the feature layers allow, though the head (AlexNet's flatten into a linear) takes one size; a size
    they do not allow is a located ShapeError."""
    m = archc.build("alexnet_2012").eval()
    with torch.no_grad():
        assert m.forward_features(torch.randn(1, 3, 291, 291)).shape == (1, 256, 8, 8)
    with pytest.raises(archc.ShapeError, match=r"alexnet_2012.yaml:\d+:\d+: "):
        m.forward_features(torch.randn(1, 3, 20, 20))
