"""
Convert a checkpoint of train.py between its two formats, in one process (no process group):

    python scripts/convert_checkpoint.py out/ckpt_0001000.dcp             # -> out/ckpt_0001000.pt
    python scripts/convert_checkpoint.py out/ckpt_0001000.pt              # -> out/ckpt_0001000.dcp
    python scripts/convert_checkpoint.py out/best.dcp other_run/ckpt_0001000.pt

A DCP directory (parallel='fsdp', any number of ranks) becomes a single file for DDP, one
process or sample.py; a single file becomes a DCP directory that an fsdp run of any size
resumes from (DCP reshards on load). Everything is kept: weights, AdamW moments and steps,
the step, data position, every rank's RNG state, config and tokenizer. The result is read back
and validated (single files with weights_only=True) before the command succeeds. It never
overwrites: an existing destination is refused. The whole model is held in memory once.
"""
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import checkpoint as ckpt_io  # noqa: E402
from runs import UserError, run_cli  # noqa: E402


def convert(src, dst=None):
    """Write src in the other format to dst (default: src with the other suffix); returns dst."""
    src = os.path.normpath(src)
    sharded = ckpt_io.is_sharded(src)
    if not os.path.exists(src):
        raise UserError(f"{src} does not exist; pass a ckpt_*.pt / best.pt file or a ckpt_*.dcp / best.dcp directory")
    if not sharded and not src.endswith(".pt"):
        raise UserError(f"{src} is neither a *.pt checkpoint file nor a *.dcp checkpoint directory")
    dst = os.path.normpath(dst or src[: -len(".dcp" if sharded else ".pt")] + (".pt" if sharded else ".dcp"))
    if ckpt_io.is_sharded(dst) == sharded or not (dst.endswith(".pt") or ckpt_io.is_sharded(dst)):
        raise UserError(f"the destination {dst} must end in {'.pt' if sharded else '.dcp'} "
                          f"(the other format than {src})")
    if os.path.exists(dst):
        raise UserError(f"{dst} already exists; move it away or name another destination")
    ckpt = ckpt_io.load_checkpoint(src)  # validated; a DCP directory gathered in this process
    if sharded:
        ckpt_io.save(ckpt, dst)
    else:
        ckpt_io.save_as_sharded(ckpt, dst)
    ckpt_io.load_checkpoint(dst)  # what was written reads back and validates
    return dst


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2 or args[0].startswith("-"):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        raise UserError("give a checkpoint to convert, and optionally its destination")
    dst = convert(*args)
    print(f"{args[0]} -> {dst}")


if __name__ == "__main__":
    run_cli(main)
