"""Session: streams images through a device, compares with a reference, localizes mismatches."""
import copy

import numpy as np
import pytest

from hybridcim.data import Cifar10
from hybridcim.runtime import EmulatorDevice
from hybridcim.runtime.csim_device import CSimDevice
from hybridcim.runtime.session import Mismatch, Session, first_mismatch
from hybridcim.zoo import random_images, random_program, random_resnet20


def _batches(images, labels, bs):
    for s in range(0, len(images), bs):
        yield images[s:s + bs], labels[s:s + bs]


class _BrokenDevice(EmulatorDevice):
    """Runs a program whose layer ``name`` has a different bias, but reports the original program."""

    def __init__(self, prog, name):
        super().__init__()
        bad = copy.deepcopy(prog)
        layer = bad.layer_by_name(name)
        layer.bias = layer.bias.copy()
        layer.bias[:] += 37
        self.load(bad)
        self._program = prog


def test_agreement_accuracy_and_throughput(csim_lib):
    csim_lib("tiny-64")
    prog = random_program(21, "tiny-64")
    images = random_images(prog, 10, seed=3)
    labels = np.arange(10) % prog.output.channels
    ref = EmulatorDevice()
    ref.load(prog)
    dev = CSimDevice("tiny-64")
    dev.load(prog)
    rep = Session(dev, ref, "emulator", show_progress=False).run(_batches(images, labels, 4), total=10)
    assert (rep.images, rep.agree, rep.ok, rep.first_mismatch) == (10, 10, True, None)
    expected_correct = int((ref.run(images).argmax(axis=1) == labels).sum())
    assert rep.correct == expected_correct and rep.accuracy == expected_correct / 10
    assert rep.images_per_s > 0
    assert rep.counters_agree is True and rep.counter_mismatch is None
    assert rep.cycles == 10 * sum(c.cycles for c in static_counters_of(prog)) > 0
    d = rep.as_dict()
    assert {"images", "accuracy", "agree", "images_per_s", "backend", "model", "cycles_per_image",
            "counters_agree"} <= d.keys()


def static_counters_of(prog):
    from hybridcim.emulator import static_counters
    return [static_counters(l, prog, 1) for l in prog.layers]


class _MiscountingDevice(EmulatorDevice):
    """Right outputs, but its counter block reports one cycle too many on the last layer."""

    @property
    def counters(self):
        out = super().counters
        out[-1] = copy.copy(out[-1])
        out[-1].cycles += 1
        return out


class _NoCounterBlock(EmulatorDevice):
    """A device whose kernel predates the counter block (a kernel 1.0 bitstream)."""

    reports_counters = False


def _against_the_emulator(dev, n):
    """(program, reference device, report) of n random images on ``dev`` against the emulator."""
    prog = random_program(21, "tiny-64")
    ref = EmulatorDevice()
    ref.load(prog)
    dev.load(prog)
    return prog, ref, Session(dev, ref, "emulator", show_progress=False).run([(random_images(prog, n), None)])


def test_a_device_without_counters_reports_none_and_still_passes():
    _, _, rep = _against_the_emulator(_NoCounterBlock(), 2)
    assert rep.ok and rep.agree == 2 and rep.counters_agree is None and rep.cycles is None
    assert rep.as_dict()["cycles_per_image"] is None and "cycles" not in rep.summary()


def test_a_counter_mismatch_fails_the_session():
    prog, ref, rep = _against_the_emulator(_MiscountingDevice(), 3)
    assert rep.agree == 3 and rep.counters_agree is False and not rep.ok
    assert rep.counter_mismatch == f"layer {prog.layers[-1].name!r} counter 'cycles': expected " \
        f"{ref.counters[-1].cycles}, got {ref.counters[-1].cycles + 1}"
    assert "COUNTER MISMATCH" in rep.summary()


def test_mismatch_names_the_first_differing_layer():
    prog = random_resnet20("tiny-64", seed=2)
    target = "s2b1_conv2"
    images = random_images(prog, 3, seed=1)
    ref = EmulatorDevice()
    ref.load(prog)
    rep = Session(_BrokenDevice(prog, target), ref, "emulator", show_progress=False).run(
        [(images, None)], total=3)
    assert not rep.ok and rep.agree < 3 and rep.accuracy is None
    m = rep.first_mismatch
    assert isinstance(m, Mismatch) and m.layer == target and m.tensor == target
    assert m.image == rep.mismatches[0] and m.expected != m.got
    # the image traced to locate the mismatch is counted, and cycles per image stay the program's
    assert rep.counted_images == 4 and rep.cycles_per_image == sum(c.cycles for c in static_counters_of(prog))
    assert f"first differing layer '{target}'" in rep.summary()


def test_first_mismatch_in_program_order():
    prog = random_program(5, "tiny-64")
    names = [prog.tensors[l.out_tensor].name for l in prog.layers]
    a = {prog.input.name: np.zeros((2, 1, 1, 1))} | {n: np.zeros((2, 2, 2, 3), np.int64) for n in names}
    b = {k: v.copy() for k, v in a.items()}
    assert first_mismatch(prog, a, b) is None
    b[names[-1]][1, 0, 1, 2] = 5
    b[names[0]][0, 1, 0, 0] = -1
    m = first_mismatch(prog, a, b, image=100)
    assert (m.layer, m.index, m.expected, m.got, m.image) == (prog.layers[0].name, (0, 1, 0, 0), 0, -1, 100)


def test_no_reference():
    prog = random_program(5, "tiny-64")
    dev = EmulatorDevice()
    dev.load(prog)
    rep = Session(dev, None, show_progress=False).run([(random_images(prog, 2), None)])
    assert rep.agree is None and rep.ok and rep.reference == "none"


def _resnet20_csim_and_emulator(csim_lib):
    """The random ResNet-20 loaded on a csim device and on the emulator device."""
    csim_lib("sun-mars-256")
    prog = random_resnet20("sun-mars-256", seed=0)
    dev = CSimDevice("sun-mars-256")
    dev.load(prog)
    ref = EmulatorDevice()
    ref.load(prog)
    return prog, dev, ref


def test_resnet20_on_real_cifar10_csim_equals_emulator(csim_lib, cifar10_root):
    """>= 200 real CIFAR-10 test images: every logit equal, and every tensor on a few of them."""
    prog, dev, ref = _resnet20_csim_and_emulator(csim_lib)
    rep = Session(dev, ref, "emulator", show_progress=False).run_cifar10(cifar10_root, limit=256, batch_size=128)
    assert rep.images == 256 and rep.agree == 256 and rep.counters_agree, rep.summary()
    images, _ = Cifar10(cifar10_root, "test").read(0, 4)
    got, want = dev.trace(images), ref.trace(images)
    assert first_mismatch(prog, want, got) is None


@pytest.mark.slow
def test_resnet20_whole_cifar10_test_set(csim_lib, cifar10_root):
    _, dev, ref = _resnet20_csim_and_emulator(csim_lib)
    rep = Session(dev, ref, "emulator", show_progress=False).run_cifar10(cifar10_root)
    assert rep.images == 10000 and rep.agree == 10000 and rep.counters_agree, rep.summary()
