"""Numeric options: --limit >= 1 and --batch-size in 1..MAX_BATCH_SIZE, refused by argparse naming the flag."""
import pytest

from hybridcim.cli.main import main
from hybridcim.cli.options import MAX_BATCH_SIZE


@pytest.mark.parametrize("cmd", [["emulate", "zoo:resnet20-random"], ["run", "--model", "zoo:resnet20-random"]])
@pytest.mark.parametrize("flag, value, says", [
    ("--limit", "0", "argument --limit: must be >= 1, got 0"),
    ("--limit", "-5", "argument --limit: must be >= 1, got -5"),
    ("--limit", "ten", "argument --limit: must be an integer, got 'ten'"),
    ("--batch-size", "0", "argument --batch-size: must be >= 1, got 0"),
    ("--batch-size", str(10 ** 9), f"argument --batch-size: must be <= {MAX_BATCH_SIZE} images"),
])
def test_bad_counts_name_the_flag(cmd, flag, value, says, capsys):
    with pytest.raises(SystemExit) as e:
        main(cmd + [flag, value])
    err = capsys.readouterr().err
    assert e.value.code == 2 and says in err and "Traceback" not in err


def test_largest_batch_is_accepted_by_the_parser():
    from hybridcim.cli.main import build_parser
    args = build_parser().parse_args(["emulate", "x.cim", "--batch-size", str(MAX_BATCH_SIZE), "--limit", "1"])
    assert args.batch_size == MAX_BATCH_SIZE and args.limit == 1


@pytest.mark.parametrize("argv, says", [(["train", "c.yaml", "--out", "o", "--epochs", "0"], "argument --epochs"),
                                        (["train", "c.yaml", "--out", "o", "--stop-after", "0"], "argument --stop-after"),
                                        (["zoo", "resnet20-random", "-o", "z.cim", "--seed", "-1"], "argument --seed")])
def test_other_counts(argv, says, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and says in capsys.readouterr().err
