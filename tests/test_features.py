"""archc.build(..., features=[...]): named internal values as the module's outputs (a dict), through the
select_outputs pass; what they do not need is not built."""

import pytest
import torch

import archc
from archc.ir.graph import Output
from archc.passes.outputs import resolve, select_outputs


def test_resnet_backbone_returns_its_stages():
    torch.manual_seed(0)
    full = archc.build("resnet18").eval()
    backbone = archc.build("resnet18", features=["layer2", "layer3", "layer4"]).eval()
    backbone.load_state_dict({k: v for k, v in full.state_dict().items() if not k.startswith("fc.")})
    x = torch.randn(2, 3, 64, 64)
    out = backbone(x)
    assert list(out) == ["layer2", "layer3", "layer4"]
    assert [tuple(v.shape) for v in out.values()] == [(2, 128, 8, 8), (2, 256, 4, 4), (2, 512, 2, 2)]
    seen = []  # layer2's value is the last output of its last block's (shared) ReLU in the full network
    full.get_submodule("layer2.1.relu").register_forward_hook(lambda mod, args, y: seen.append(y))
    full(x)
    torch.testing.assert_close(out["layer2"], seen[-1])
    assert backbone.analysis.params == full.analysis.params - 513 * 1000  # no classifier
    assert backbone.analysis.params == sum(p.numel() for p in backbone.parameters())
    assert not hasattr(backbone, "fc")


def test_features_of_nodes_groups_and_aux_graphs():
    m = archc.build("googlenet", features=["inception3a", "maxpool4", "aux1.fc2"]).train()
    out = m(torch.randn(1, 3, 224, 224))  # train mode: aux heads are not run unless asked for
    assert {k: tuple(v.shape) for k, v in out.items()} == {"inception3a": (1, 256, 28, 28),
                                                          "maxpool4": (1, 832, 7, 7), "aux1.fc2": (1, 1000)}
    assert not hasattr(m, "aux2")
    fused = archc.fuse(m)  # the fused module keeps the named outputs
    assert list(fused(torch.randn(1, 3, 224, 224))) == ["inception3a", "maxpool4", "aux1.fc2"]


@pytest.mark.parametrize("names,words", [
    (["layer5"], "features: resnet18 has no node or module group 'layer5' (did you mean 'layer4'?)"),
    ([], "features: name at least one node or module group"),
    (["layer1", "layer1"], "features: a name is given twice"),
])
def test_feature_name_errors(names, words):
    with pytest.raises(archc.ArchcError, match=words.replace("(", "\\(").replace(")", "\\)").replace("?", "\\?")):
        archc.build("resnet18", features=names)


def test_a_group_with_several_values_leaving_must_be_named_precisely():
    g = archc.analyze("resnet18").graph.copy()
    g.outputs.append(Output("x", "layer1.0.relu", False))  # now two values leave layer1.0
    with pytest.raises(archc.ArchcError, match="group 'layer1.0' has 2 values leaving it"):
        resolve(g, "layer1.0")
    assert resolve(g, "layer1.0.conv2") == "layer1.0.conv2"


def test_select_outputs_prunes_and_reschedules():
    g = select_outputs(archc.analyze("vgg16").graph.copy(), ["features.15"])
    assert [o.node for o in g.outputs] == ["features.15"] and g.order()[-1] == "features.15"
    assert all(not n.meta["aux"] for n in g.nodes())
    assert g.meta["schedules"][False].outputs == ("features.15",)
