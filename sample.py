"""
Generate text from a checkpoint of train.py, with the parameterization it was trained with
(the logit multiplier is part of the model, so sampling sees the same logits as training).

    python sample.py --out_dir=out --start="ROMEO:" --num_samples=2 --max_new_tokens=300
"""
import os
import sys

import torch

from configurator import ConfigError, configure

# defaults; override with --key=value
out_dir = "out"
checkpoint = ""          # a checkpoint file; default: best.pt of out_dir, else its latest
start = "\n"             # prompt; "FILE:prompt.txt" reads it from a file
num_samples = 1
max_new_tokens = 300
temperature = 0.8        # 0: greedy
top_k = 200
seed = 1337
device = "cpu"


def load_codec(meta):
    """(encode, decode) for a dataset's meta.json: 'char' vocabularies or GPT-2 BPE."""
    if meta.get("tokenizer") == "char":
        itos = meta["itos"]
        stoi = {c: i for i, c in enumerate(itos)}

        def encode(s):
            missing = sorted(set(c for c in s if c not in stoi))
            if missing:
                raise ConfigError(f"the prompt has characters outside the vocabulary: {missing!r}")
            return [stoi[c] for c in s]
        return encode, lambda ids: "".join(itos[i] for i in ids)
    import tiktoken
    enc = tiktoken.get_encoding(meta.get("tokenizer", "gpt2"))
    return (lambda s: enc.encode(s, allowed_special={"<|endoftext|>"})), enc.decode


def main():
    configure(globals(), sys.argv[1:])
    from dataloader import read_meta
    from model import GPT, GPTConfig
    from train import list_checkpoints, load_checkpoint

    path = checkpoint
    if not path:
        best = os.path.join(out_dir, "best.pt")
        ckpts = list_checkpoints(out_dir)
        path = best if os.path.exists(best) else (ckpts[-1] if ckpts else "")
    if not path or not os.path.exists(path):
        raise ConfigError(f"no checkpoint in {out_dir!r}; train one with python train.py "
                          f"--out_dir={out_dir} or pass --checkpoint=FILE")
    ckpt = load_checkpoint(path)
    model = GPT(GPTConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.eval().to(device)
    cfg = ckpt["config"]
    ddir = cfg.get("data_dir") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", cfg["dataset"])
    encode, decode = load_codec(read_meta(ddir) or {"tokenizer": "gpt2"})
    prompt = start
    if prompt.startswith("FILE:"):
        with open(prompt[5:], encoding="utf-8") as f:
            prompt = f.read()
    idx = torch.tensor([encode(prompt)], dtype=torch.long, device=device)
    torch.manual_seed(seed)
    print(f"# {path}: {model.p.name}, {model.config.n_layer} layers x {model.config.n_embd}, step {ckpt['iter_num']}")
    for _ in range(num_samples):
        out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k)
        print(decode(out[0].tolist()))
        print("---------------")


if __name__ == "__main__":
    try:
        main()
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
