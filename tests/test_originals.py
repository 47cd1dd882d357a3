"""The lecture's originals where torchvision differs, against plain PyTorch written from their sources: He et al.'s
CIFAR ResNet with option A shortcuts (stride-2 subsampling and zero channels, no parameters) and Szegedy et al.'s
GoogLeNet as in BVLC's Caffe model (no BatchNorm, LRN, 5x5 branches, biases, ceil-mode pooling, auxiliary heads).
Each reference has the spec's state_dict keys, so it loads strictly; both must compute the same function."""

import torch
import torch.nn.functional as F
from torch import nn

import archc


class BasicA(nn.Module):
    """He et al. 2016 CIFAR basic block; the shortcut where the shape changes is x[:, :, ::2, ::2] + zero channels."""

    def __init__(self, cin, out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.stride, self.extra = stride, out - cin

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        s = x[:, :, ::self.stride, ::self.stride]
        return F.relu(y + F.pad(s, (0, 0, 0, 0, 0, self.extra)))


class CifarResNet(nn.Module):
    def __init__(self, depth, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
        widths = [16, 32, 64]
        for s, w in enumerate(widths):
            blocks = [BasicA(widths[max(s - 1, 0)] if i == 0 else w, w, 2 if s and i == 0 else 1) for i in range(n)]
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(F.relu(self.bn1(self.conv1(x))))))
        return self.fc(x.mean((2, 3)))


def _randomise(model):
    """Random BN statistics and affine parameters, so that a wrong wiring cannot hide behind a zero or a one."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1), m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.normal_(0, 0.1)
    return model


def test_cifar_resnet_option_a_equals_plain_pytorch():
    torch.manual_seed(0)
    ref = _randomise(CifarResNet(20)).double().eval()
    spec = archc.load("resnet110_cifar", depth=20)
    ours = archc.build(spec).double().eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert archc.analyze(spec).params == sum(p.numel() for p in ref.parameters()) == 269722  # Table 6: 0.27M
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(ours(x), ref(x))


def test_cifar_resnet_option_b_projects():
    a = archc.analyze(archc.load("resnet110_cifar", projection=True))
    assert a.params == 1730714  # option A's 1,727,962 + two 1x1 conv + BN projections: 512 + 2,048 + 64 + 128
    assert [n.name for n in a.nodes() if n.op == "conv" and "downsample" in n.name] == [
        "layer2.0.downsample.0", "layer3.0.downsample.0"]


class ConvReLU(nn.Module):
    def __init__(self, cin, out, k=1, stride=1, pad=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, out, k, stride, pad)

    def forward(self, x):
        return F.relu(self.conv(x))


class Inception(nn.Module):
    def __init__(self, cin, c1, c3r, c3, c5r, c5, pool):
        super().__init__()
        self.branch1 = ConvReLU(cin, c1)
        self.branch2 = nn.Sequential(ConvReLU(cin, c3r), ConvReLU(c3r, c3, 3, pad=1))
        self.branch3 = nn.Sequential(ConvReLU(cin, c5r), ConvReLU(c5r, c5, 5, pad=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), ConvReLU(cin, pool))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class AuxHead(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.conv, self.fc1, self.fc2 = ConvReLU(cin, 128), nn.Linear(2048, 1024), nn.Linear(1024, 1000)

    def forward(self, x):
        x = self.conv(F.avg_pool2d(x, 5, 3, ceil_mode=True)).flatten(1)
        return self.fc2(F.dropout(F.relu(self.fc1(x)), 0.7, self.training))


class CaffeGoogLeNet(nn.Module):
    """BVLC googlenet train_val.prototxt; names as the spec's."""

    TABLE = {"3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
             "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
             "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
             "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
             "5b": (832, 384, 192, 384, 48, 128, 128)}

    def __init__(self, aux):
        super().__init__()
        self.conv1, self.conv2, self.conv3 = ConvReLU(3, 64, 7, 2, 3), ConvReLU(64, 64), ConvReLU(64, 192, 3, pad=1)
        for name, row in self.TABLE.items():
            setattr(self, f"inception{name}", Inception(*row))
        if aux:
            self.aux1, self.aux2 = AuxHead(512), AuxHead(528)
        self.fc = nn.Linear(1024, 1000)

    def forward(self, x):
        pool, lrn = (lambda t: F.max_pool2d(t, 3, 2, ceil_mode=True)), (lambda t: F.local_response_norm(t, 5, 1e-4))
        x = pool(lrn(self.conv3(self.conv2(lrn(pool(self.conv1(x)))))))
        x = pool(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        heads = [self.aux1(x)] if self.training and hasattr(self, "aux1") else []
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        heads += [self.aux2(x)] if heads else []
        x = self.inception5b(self.inception5a(pool(self.inception4e(x))))
        out = self.fc(F.dropout(F.avg_pool2d(x, 7, 1).flatten(1), 0.4, self.training))
        return (out, *heads) if heads else out


def test_googlenet_2014_equals_the_caffe_model_in_plain_pytorch():
    torch.manual_seed(0)
    ref = CaffeGoogLeNet(aux=True)
    ours = archc.build("googlenet_2014")
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():  # training mode: the main output and both auxiliary heads, dropout drawn alike
        torch.manual_seed(1)
        mine = ours.train()(x)
        torch.manual_seed(1)
        theirs = ref.train()(x)
    assert len(mine) == len(theirs) == 3
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(mine, theirs))


def test_googlenet_2014_deploy_is_the_net_without_its_heads():
    with torch.device("meta"):
        train = archc.build("googlenet_2014").state_dict()
        deploy = archc.build(archc.load("googlenet_2014", variant="deploy")).state_dict()
        ref = CaffeGoogLeNet(aux=False).state_dict()
    assert list(deploy) == [k for k in train if not k.startswith("aux")] == list(ref)
    assert all(deploy[k].shape == ref[k].shape for k in ref)
