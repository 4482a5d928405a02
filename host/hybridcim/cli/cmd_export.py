"""``hybridcim export CHECKPOINT --out DIR``: integer model (npz + JSON) and QONNX of a checkpoint."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("export", help="export a training checkpoint: integer model + QONNX (needs torch)")
    p.add_argument("checkpoint", help="checkpoint.safetensors (or the run folder holding it)")
    p.add_argument("--out", required=True, help="output folder (integer_model.json/.npz, model.onnx)")
    p.add_argument("--no-qonnx", action="store_true", help="skip the QONNX file")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..fileio import check_input, check_output_dir
    ckpt = check_input(args.checkpoint, "checkpoint", "any")  # paths first: no torch import for a bad one
    if ckpt.is_dir():
        check_input(ckpt / "checkpoint.safetensors", "checkpoint", "file")
    check_output_dir(args.out, "--out")
    from ..train.export import export_checkpoint
    desc = export_checkpoint(args.checkpoint, args.out, qonnx=not args.no_qonnx)
    print(f"exported {desc['name']} ({len(desc['layers'])} layers) to {args.out}")
    return 0
