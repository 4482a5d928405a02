"""Search config schema: unknown or misspelled keys, bad ratios, bad types are errors naming the key."""
import copy
import json

import pytest

from hybridcim.cli.main import main
from hybridcim.search.config import SearchConfigError, check_against_evaluator, load_config, parse_config
from hybridcim.search.evaluators import EvaluatorError, make_evaluator

GOOD = {"name": "s", "evaluator": {"kind": "toy_evaluator:make", "options": {"layers": 3}},
        "space": {"ratios": [0, 4, 8], "fixed": {"L0": 0}}, "objectives": ["accuracy", "energy_uj"],
        "sampler": {"population_size": 4, "seed": 1, "mutation_prob": None, "crossover_prob": 0.9}, "trials": 5,
        "baselines": [{"name": "int4", "ratio": 0}, {"name": "paper", "accuracy": 0.9, "energy_uj": 3.0}]}


def bad(path, value):
    d = copy.deepcopy(GOOD)
    node = d
    for k in path[:-1]:
        node = node[k]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


def test_good_config_parses():
    c = parse_config(GOOD)
    assert c.ratios == (0, 4, 8) and c.fixed == {"L0": 0} and c.trials == 5 and c.population_size == 4
    assert [b.name for b in c.baselines] == ["int4", "paper"] and c.baselines[0].ratio == 0


@pytest.mark.parametrize("d, words", [
    ({**GOOD, "trails": 3}, ["unknown key 'trails'", "did you mean 'trials'"]),
    (bad(["sampler", "populaton_size"], 4), ["sampler", "populaton_size", "population_size"]),
    (bad(["space", "ratio"], [0]), ["space", "'ratio'"]),
    (bad(["evaluator", "knd"], "x"), ["evaluator", "'knd'"]),
    (bad(["baselines"], [{"name": "b", "ratios": 0}]), ["baselines[0]", "'ratios'"]),
    (bad(["space", "ratios"], [0, 9]), ["space.ratios[1]", "9", "outside"]),
    (bad(["space", "ratios"], [0, -1]), ["space.ratios[1]", "outside"]),
    (bad(["space", "ratios"], [0, 2.5]), ["space.ratios[1]", "integer"]),
    (bad(["space", "ratios"], [4, 4]), ["repeats"]),
    (bad(["space", "ratios"], []), ["space.ratios"]),
    (bad(["space", "fixed"], {"L0": 2}), ["space.fixed.L0", "ratio 2", "allowed set"]),
    (bad(["baselines"], [{"name": "b", "ratio": 6}]), ["baselines[0].ratio", "6", "allowed set"]),
    (bad(["baselines"], [{"name": "b"}]), ["baselines[0]", "either"]),
    (bad(["baselines"], [{"name": "b", "ratio": 0, "layers": {"L1": 6}}]), ["baselines[0].layers.L1", "6", "allowed"]),
    (bad(["baselines"], [{"name": "b", "ratio": 0, "layers": {}}]), ["baselines[0].layers", "non-empty mapping"]),
    (bad(["baselines"], [{"name": "b", "ratio": 0, "layers": [4]}]), ["baselines[0].layers", "mapping"]),
    (bad(["baselines"], [{"name": "b", "layers": {"L1": 4}, "accuracy": 0.5}]), ["baselines[0].layers", "needs 'ratio'"]),
    (bad(["space"], KeyError), ["missing key 'space'"]),
    (bad(["trials"], 0), ["trials", "outside"]),
    (bad(["trials"], True), ["trials", "integer"]),
    (bad(["sampler", "crossover_prob"], 2), ["sampler.crossover_prob"]),
    (bad(["objectives"], ["accuracy"]), ["objectives", "at least 2"]),
    (bad(["name"], "a b"), ["name"]),
])
def test_config_errors_name_the_key(d, words):
    with pytest.raises(SearchConfigError) as e:
        parse_config(d)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_config_against_evaluator():
    ev = make_evaluator("toy_evaluator:make", {"layers": 3})
    assert check_against_evaluator(parse_config(GOOD), ev) == ["L1", "L2"]
    with pytest.raises(SearchConfigError, match="'latency_us' is not reported"):
        check_against_evaluator(parse_config(bad(["objectives"], ["accuracy", "latency_us"])), ev)
    with pytest.raises(SearchConfigError, match="'L9' is not a layer"):
        check_against_evaluator(parse_config(bad(["space", "fixed"], {"L9": 0})), ev)
    seeded = bad(["baselines"], [{"name": "b", "ratio": 0, "layers": {"L2": 8}}])
    assert parse_config(seeded).baselines[0].ratios_for(["L1", "L2"]) == {"L1": 0, "L2": 8}
    with pytest.raises(SearchConfigError, match=r"baselines\[0\].layers: 'L7' is not a layer of evaluator"):
        check_against_evaluator(parse_config(bad(["baselines"], [{"name": "b", "ratio": 0, "layers": {"L7": 4}}])), ev)
    with pytest.raises(SearchConfigError, match=r"'L0' is held by space.fixed"):
        check_against_evaluator(parse_config(bad(["baselines"], [{"name": "b", "ratio": 0, "layers": {"L0": 4}}])), ev)


def test_evaluator_errors():
    with pytest.raises(EvaluatorError, match="unknown evaluator 'nope'"):
        make_evaluator("nope")
    with pytest.raises(EvaluatorError, match="cannot be imported"):
        make_evaluator("no_such_module_xyz:make")
    with pytest.raises(EvaluatorError, match="option 'run' is required: the supernet's run folder"):
        make_evaluator("dual-supernet", {})


def test_yaml_file_and_cli_exit_2(tmp_path, capsys):
    yaml = pytest.importorskip("yaml")
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({**GOOD, "objectivs": ["accuracy"]}))
    with pytest.raises(SearchConfigError, match="objectivs"):
        load_config(p)
    assert main(["search", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown key 'objectivs'" in err[0] and "did you mean 'objectives'" in err[0]
    (tmp_path / "j.json").write_text("{not json")
    assert main(["search", str(tmp_path / "j.json"), "--out", str(tmp_path / "o")]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_without_optuna_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "optuna", None)  # as if the 'search' extra were not installed
    (tmp_path / "c.json").write_text(json.dumps(GOOD))
    assert main(["search", str(tmp_path / "c.json"), "--out", str(tmp_path / "o")]) == 2
    assert "needs Optuna: pip install 'hybridcim[search]'" in capsys.readouterr().err


def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    import time
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]"
              for i in range(1, 12)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\nname: s\n")
    t0 = time.monotonic()
    with pytest.raises(SearchConfigError, match="line 2: YAML aliases"):
        load_config(tmp_path / "bomb.yaml")
    assert time.monotonic() - t0 < 5
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(SearchConfigError, match="config: must be a mapping"):
        load_config(tmp_path / "list.yaml")
