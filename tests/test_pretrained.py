"""Pretrained weights by name (torchvision's weights API, offline here: a weights file made locally and put where
torchvision's cache looks), the input pipeline they expect, `archc predict`, and export with the pipeline.

torchvision is an optional extra (`archc[weights]`): without it, asking for weights by name is one line, exit 2."""

import json
import sys
import urllib.error

import pytest
import torch

import archc
from archc import cli
from archc.spec import zoo

tv = pytest.importorskip("torchvision")
from PIL import Image  # noqa: E402  (torchvision's dependency)
from torchvision.models import get_model, get_model_weights  # noqa: E402
from torchvision.transforms.functional import pil_to_tensor  # noqa: E402


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torchvision cache ($TORCH_HOME) and a function putting a locally made weights file in it, under
    the file name (with its hash prefix) torchvision's URL gives."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)

    def put(model: str, weights: str = "IMAGENET1K_V1", **kwargs):
        w = get_model_weights(model)[weights]
        torch.manual_seed(1)
        net = get_model(model, weights=None, **kwargs)
        for m in net.modules():  # BN statistics that are not the identity
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
        state = net.state_dict()
        torch.save(state, folder / w.url.rsplit("/", 1)[1])
        return state

    return put


def test_weights_by_name_load_torchvisions_file_through_its_cache(hub):
    state = hub("resnet18")
    model = archc.build("resnet18", weights="IMAGENET1K_V1")
    r = model.weights_report
    assert r.complete and r.file == "torchvision:resnet18.IMAGENET1K_V1" and "cached at" in r.format
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert model.weights_name == "IMAGENET1K_V1" and len(model.categories) == 1000
    assert model.preprocessing == archc.load("resnet18").preprocessing  # the published weights: the spec's pipeline
    again = archc.build("resnet", variant="resnet18", weights="torchvision:DEFAULT")  # the alias, resolved
    assert again.weights_name == "IMAGENET1K_V1"


def test_other_weights_bring_their_own_pipeline(hub):
    hub("resnet50", "IMAGENET1K_V2")
    model = archc.build("resnet50", weights="torchvision:IMAGENET1K_V2")
    assert model.weights_report.complete
    assert (model.preprocessing.resize, model.preprocessing.crop) == (232, 224)  # V2's, from torchvision's meta
    assert archc.load("resnet50").preprocessing.resize == 256  # V1's, which the spec publishes


def test_auxiliary_heads_come_with_the_weights(hub):
    state = hub("googlenet", aux_logits=True, init_weights=True)
    model = archc.build("googlenet", weights="IMAGENET1K_V1")
    assert model.weights_report.complete and any(k.startswith("aux1.") for k in state)


def test_compile_reports_weights_by_name(hub, capsys):
    hub("resnet18")
    assert cli.main(["compile", "resnet18", "--weights", "torchvision:IMAGENET1K_V1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["weights"]
    assert report["file"] == "torchvision:resnet18.IMAGENET1K_V1" and report["matched"] == 122


def test_offline_is_one_located_line(hub, monkeypatch, capsys):
    """No file in the cache and no network: the download fails, and the user reads where to put the file."""
    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    assert cli.main(["compile", "resnet18", "--weights", "torchvision:IMAGENET1K_V1"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert err[-1].startswith("archc/zoo/resnet.yaml:") and "variants.resnet18.torchvision" not in err[-1]
    assert "cannot download https://download.pytorch.org/models/resnet18-f37072fd.pth (URLError: [Errno -3] " \
           "Temporary failure in name resolution); without a network, put the file at " in err[-1]
    assert "Traceback" not in captured.err and captured.out == ""  # (torch.hub's "Downloading" line: on stderr)


def test_a_damaged_cached_file_says_so(hub, capsys):
    import os

    hub("resnet18")
    name = get_model_weights("resnet18").IMAGENET1K_V1.url.rsplit("/", 1)[1]
    cached = os.path.join(os.environ["TORCH_HOME"], "hub", "checkpoints", name)
    with open(cached, "wb") as f:
        f.write(b"not weights")
    assert cli.main(["compile", "resnet18", "--weights", "IMAGENET1K_V1"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"cannot read torchvision's cached file {cached}" in err and "delete it to download it again" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("argv,words", [
    (["compile", "lenet5", "--weights", "torchvision:DEFAULT"],
     "lenet5 names no torchvision model (`torchvision:` in the spec or its variant)"),
    (["compile", "resnet18", "--weights", "torchvision:IMAGENET1K_V9"],
     "torchvision has no such weights for resnet18 (it has: DEFAULT, IMAGENET1K_V1)"),
])
def test_weights_by_name_mistakes(argv, words, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_without_torchvision_weights_by_name_is_one_line(monkeypatch, capsys):
    """The main job's environment has no torchvision."""
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision raises ImportError
    assert cli.main(["compile", "resnet18", "--weights", "torchvision:IMAGENET1K_V1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("weights by name (torchvision:NAME) and archc predict need torchvision")
    assert err.endswith("pip install 'archc[weights]'") and len(err.splitlines()) == 1


def _networks():
    for path in zoo.specs():
        spec = archc.load(path)
        for variant in spec.variants or [None]:
            one = spec.with_params({"variant": variant}) if variant else spec
            if one.torchvision:
                yield one


TRANSFORM_INPUT = {"googlenet", "inception_v3"}  # torchvision's module normalises (x - 0.5) / 0.5 itself


def test_published_figures_and_pipelines_are_torchvisions():
    """Every network naming a torchvision model publishes the accuracy of its first weights as torchvision's meta
    states it, and their input pipeline (resize, crop, interpolation, mean, std); GoogLeNet's and Inception-v3's
    weights expect the (x - 0.5) / 0.5 their torchvision module computes inside (transform_input), so their
    spec's pipeline does it."""
    from archc.weights import pipeline

    seen = 0
    for spec in _networks():
        weights = list(get_model_weights(spec.torchvision))[0]
        metrics = weights.meta["_metrics"]["ImageNet-1K"]
        p = spec.published
        assert (p.top1, p.top5, p.weights, p.dataset) == (metrics["acc@1"], metrics["acc@5"], weights.name,
                                                          "ImageNet-1k"), spec.name
        want = pipeline(weights)
        if spec.torchvision in TRANSFORM_INPUT:
            want = type(want)(want.resize, want.crop, want.interpolation, (0.5,) * 3, (0.5,) * 3)
        assert spec.preprocessing == want, spec.name
        seen += 1
    assert seen == 68  # every CNN builder of torchvision


def test_transform_input_pipeline_equals_torchvisions_module():
    """What Inception-v3's first layer sees: the spec's pipeline gives what torchvision's pipeline followed by its
    module's transform_input gives."""
    from archc import predict

    theirs = get_model("inception_v3", weights=None, aux_logits=True, init_weights=False, transform_input=True)
    image = (torch.rand(3, 320, 350, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    w = get_model_weights("inception_v3").IMAGENET1K_V1
    want = theirs._transform_input(w.transforms()(image)[None])
    got = predict.prepare(image, archc.load("inception_v3").preprocessing)[None]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_predict_prints_what_the_eager_models_logits_give(hub, tmp_path, capsys):
    hub("resnet18")
    images = []
    for i, (h, w) in enumerate([(300, 400), (240, 240)]):
        g = torch.Generator().manual_seed(i)
        img = (torch.rand(3, h, w, generator=g) * 255).to(torch.uint8)
        path = tmp_path / f"img{i}.png"
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(path)
        images.append(path)
    assert cli.main(["predict", "resnet18", *map(str, images), "--top", "5", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    weights = get_model_weights("resnet18").IMAGENET1K_V1
    model = archc.build("resnet18", weights="IMAGENET1K_V1").eval()
    assert got["weights"] == "torchvision:resnet18.IMAGENET1K_V1" and got["preprocessing"]["resize"] == 256
    for path, prediction in zip(images, got["predictions"]):
        image = pil_to_tensor(Image.open(path).convert("RGB"))
        x = weights.transforms()(image)[None]  # torchvision's own pipeline
        with torch.no_grad():
            probs = model(x).softmax(1)[0]
        top = probs.topk(5)
        names = weights.meta["categories"]
        assert [(c["class"], c["name"]) for c in prediction["top"]] == \
            [(int(i), names[int(i)]) for i in top.indices]
        assert [c["probability"] for c in prediction["top"]] == pytest.approx(top.values.tolist(), rel=1e-5)
    assert cli.main(["predict", "resnet18", str(images[0]), "--top", "2"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == "resnet18 with torchvision:resnet18.IMAGENET1K_V1; images resized to 256 (bilinear), " \
                      "cropped to 224"
    assert text[1] == f"{images[0]}:" and text[2].endswith(got["predictions"][0]["top"][0]["name"])


@pytest.mark.parametrize("argv,words", [
    (["predict", "resnet18", "nope.png", "--weights", "WEIGHTS"], "cannot read image nope.png: no such file"),
    (["predict", "lenet5", "x.png"], "lenet5 names no torchvision model, so it has no published weights"),
    (["predict", "unet", "x.png", "--weights", "u.safetensors"], "cannot read weights u.safetensors"),
])
def test_predict_mistakes_are_one_line(argv, words, hub, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hub("resnet18")
    (tmp_path / "WEIGHTS").write_bytes(b"")  # a file: taken as a file, not as a weights name
    torch.save(archc.build("resnet18").state_dict(), tmp_path / "WEIGHTS")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_export_carries_the_pipeline_and_the_weights(hub, tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    safetensors = pytest.importorskip("safetensors.torch")
    hub("resnet18")
    out = tmp_path / "r18.onnx"
    assert cli.main(["export", "resnet18", "--format", "onnx", "--weights", "torchvision:IMAGENET1K_V1",
                     "--safetensors", "-o", str(out), "--no-check"]) == 0
    assert f"wrote {tmp_path / 'r18.safetensors'}" in capsys.readouterr().out
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["archc.preprocessing"]) == {"resize": 256, "crop": 224, "interpolation": "bilinear",
                                                       "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert json.loads(meta["archc.classes"])[207] == "golden retriever"
    state = safetensors.load_file(str(tmp_path / "r18.safetensors"))
    again = archc.build("resnet18", weights=str(tmp_path / "r18.safetensors"))
    assert again.weights_report.complete and torch.equal(state["fc.weight"], again.fc.weight)
