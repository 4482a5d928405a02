"""DualNet training: the strict ``dual`` config section, supernet ratio sampling (deterministic, resumable),
a dual-path run that resumes bit-identically and exports a compilable version-2 integer model, and a
fixed-ratio fine-tune of a supernet candidate."""
import copy
import dataclasses
from pathlib import Path

import pytest
import torch

from hybridcim.compiler import compile_model, load_integer_model
from hybridcim.train import trainer as trainer_mod
from hybridcim.train.checkpoint import read_checkpoint
from hybridcim.train.config import ConfigError, config_from_dict, load_config
from hybridcim.train.dualpath import configure_dual, dual_layers, get_ratios
from hybridcim.train.models import build_model
from hybridcim.train.trainer import Trainer

CONFIGS = Path(trainer_mod.__file__).parent / "configs"
DUAL = {"layers": "blocks", "mode": "supernet", "ratios": [0, 2, 4, 6, 8], "ratio": 4}


def _dual_cfg(root=None, epochs=2, **dual):
    """The smoke config as a dense dual-path supernet on sun-mars-256-dual (4 steps of 32 images per epoch)."""
    cfg = load_config(CONFIGS / "smoke.yaml").to_dict()
    cfg.update(preset="sun-mars-256-dual", dual={**DUAL, **dual})
    cfg["pruning"]["target"] = 0.0
    cfg["precision"].update(precisions=[4, 8], assign_epoch=0)
    cfg["optim"].update(epochs=epochs, bn_freeze_epoch=None)
    cfg["optim"].update(batch_size=32)
    cfg["data"].update(root=None if root is None else str(root), train_limit=128, test_limit=32, eval_batch_size=32)
    return config_from_dict(cfg)


def test_dual_section_is_strict():
    base = _dual_cfg().to_dict()

    def bad(match, **dual):
        with pytest.raises(ConfigError, match=match):
            config_from_dict({**base, "dual": {**base["dual"], **dual}})
    bad("unknown key.*'ratio_set'", ratio_set=[0, 8])
    bad("dual ratio 3 is outside the allowed set", ratio=3)
    bad("dual ratio 5 is outside the allowed set", layer_ratios=[0, 2, 5])
    bad("distinct ratios q in 0..8", ratios=[0, 9])
    bad("needs at least two", ratios=[4], ratio=4)
    bad("must be none, blocks or all", layers="convs")
    bad("must be fixed or supernet", mode="search")
    bad("bin_threshold=0", bin_threshold=0)
    with pytest.raises(ConfigError, match="second macro type"):
        config_from_dict({**base, "preset": "sun-mars-256"})
    with pytest.raises(ConfigError, match="pruning.target 0"):
        config_from_dict({**base, "pruning": {**base["pruning"], "target": 0.5}})
    m = build_model("resnet", **_dual_cfg().model_kwargs())
    with pytest.raises(ConfigError, match="layer_ratios has 2 entries, the model has 6"):
        configure_dual(m, dataclasses.replace(_dual_cfg().dual, layer_ratios=(0, 2)), 0)
    for name in ("resnet20_dualnet_supernet", "resnet20_ternary", "resnet20_int4_uniform"):
        cfg = load_config(CONFIGS / f"{name}.yaml")  # the three share one schedule
        sup = load_config(CONFIGS / "resnet20_dualnet_supernet.yaml")
        assert (cfg.optim, cfg.distill, cfg.pruning.target, cfg.precision, cfg.init_from) == \
            (sup.optim, sup.distill, 0.0, sup.precision, sup.init_from)
        assert cfg.optim.epochs <= 60 and cfg.distill.teacher.endswith("teacher.safetensors")
        assert cfg.init_from == cfg.distill.teacher  # every run starts from the float teacher's weights
        m = build_model(cfg.model.arch, **cfg.model_kwargs())
        assert len(dual_layers(m)) == (0 if "int4" in name else 18)


def test_int4_init_starts_every_int4_path_from_a_plain_run(tmp_path, cifar10_root):
    """dual.int4_init: a run of the same network without dual-path layers supplies every tensor it has (INT4
    paths, stem, fc, activation scales); at ratio 0 the dual model then computes exactly that run's logits.
    A dual run, or another network, is refused."""
    from hybridcim.train.export import model_from_checkpoint
    plain = _dual_cfg(cifar10_root, epochs=1).to_dict()
    plain.update(preset="sun-mars-256", dual={"layers": "none"})
    Trainer(config_from_dict(plain), tmp_path / "int4", progress=False).run()
    cfg = _dual_cfg(cifar10_root, epochs=1, mode="fixed", ratios=[0, 4], ratio=0, int4_init=str(tmp_path / "int4"))
    tr = Trainer(cfg, tmp_path / "dual", progress=False)
    assert tr.precision_from_init
    ref, _ = model_from_checkpoint(tmp_path / "int4" / "checkpoint.safetensors")
    x = torch.rand(8, 3, 32, 32)
    tr.model.eval()
    with torch.no_grad():
        assert torch.equal(tr.model(x), ref(x))
    bad = _dual_cfg(cifar10_root, epochs=1, mode="fixed", ratios=[0, 4], ratio=0, int4_init=str(tmp_path / "dual"))
    Trainer(cfg, tmp_path / "dual", progress=False).run()  # a dual run as the source: refused
    with pytest.raises(ValueError, match="has dual-path layers"):
        Trainer(bad, tmp_path / "x", progress=False)
    with pytest.raises(ConfigError, match="int4_init"):
        config_from_dict({**plain, "dual": {"layers": "none", "int4_init": "runs/int4"}})


def _draws(m, n):
    m.train()
    x = torch.rand(2, 3, 8, 8)
    out = []
    for _ in range(n):
        with torch.no_grad():
            m(x)
        out.append([int(l.last["ratio"]) for _, l in dual_layers(m)])
    return out


def test_supernet_draws_are_seeded_resumable_and_eval_uses_the_fixed_ratio():
    cfg = _dual_cfg()
    torch.manual_seed(0)
    a = build_model("resnet", **cfg.model_kwargs())
    configure_dual(a, cfg.dual, seed=3)
    b = copy.deepcopy(a)
    da = _draws(a, 6)
    assert {q for row in da for q in row} <= {0, 2, 4, 6, 8} and len({q for row in da for q in row}) > 2
    assert len({tuple(r) for r in da}) > 1  # a fresh draw per step, per layer
    c = copy.deepcopy(a)  # the model state after 6 steps (its sample_step buffers): the draws continue
    assert _draws(b, 9)[6:] == _draws(c, 3) and _draws(b, 0) == []
    a.eval()
    with torch.no_grad():
        a(torch.rand(1, 3, 8, 8))
    assert all(int(l.last["ratio"]) == 4 for _, l in dual_layers(a)) and get_ratios(a) == {n: 4 for n, _ in dual_layers(a)}


def test_dual_run_resumes_identically_and_exports_a_dual_program(tmp_path, cifar10_root):
    cfg = _dual_cfg(cifar10_root)
    full = tmp_path / "full"
    Trainer(cfg, full, progress=False).run()
    part = tmp_path / "part"
    Trainer(cfg, part, progress=False, stop_after_epochs=1).run()
    assert read_checkpoint(part / "checkpoint.safetensors")[1]["epoch"] == 1
    Trainer(cfg, part, resume=True, progress=False).run()
    a, ma = read_checkpoint(full / "checkpoint.safetensors")
    b, mb = read_checkpoint(part / "checkpoint.safetensors")
    assert ma["epoch"] == mb["epoch"] == 2 and a.keys() == b.keys()
    for k in a:
        if k != "rng/torch":
            assert torch.equal(a[k], b[k]), k
    steps = [int(v) for k, v in a.items() if k.endswith("sample_step")]
    assert steps == [8] * 6  # 2 epochs x 4 supernet steps, one draw each per layer
    im = load_integer_model(full / "model")
    assert im.desc["version"] == 2 and (full / "model" / "model.onnx").exists()
    prog = compile_model(im)
    assert [l.dual.ratio_eighths for l in prog.layers if l.flags] == [4] * 6

    # fine-tune one candidate of the supernet at fixed per-layer ratios
    ft = _dual_cfg(cifar10_root, epochs=1, mode="fixed", layer_ratios=[0, 2, 4, 6, 8, 8])
    ft = dataclasses.replace(ft, init_from=str(full))
    tr = Trainer(ft, tmp_path / "ft", progress=False)
    assert tr.precision_from_init and list(get_ratios(tr.model).values()) == [0, 2, 4, 6, 8, 8]
    tr.run()
    prog = compile_model(load_integer_model(tmp_path / "ft" / "model"))
    assert [l.dual.ratio_eighths for l in prog.layers if l.flags] == [0, 2, 4, 6, 8, 8]

    # shipped: the card lists the dual layers; ternary filters count apart, not as pruned
    import json

    from hybridcim.compiler.report import program_compression
    from hybridcim.models.packaging import ship
    (tmp_path / "ft.yaml").write_text("# the fine-tune's config (content not read by ship)\n")
    dest = ship(tmp_path / "ft", "dual-smoke", tmp_path / "ft.yaml", cifar10_root, models_dir=tmp_path / "models")
    card = json.loads((dest / "card.json").read_text())
    assert [v["ratio_eighths"] for v in card["dual_layers"].values()] == [0, 2, 4, 6, 8, 8]
    assert card["ternary_fraction"] == program_compression(prog)["ternary_fraction"] > 0.3
    assert card["structural_sparsity"] == 0.0 and card["cifar10_test"]["images"] == 10000
