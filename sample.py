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
                raise ConfigError(f"the prompt has characters outside the vocabulary: {missing!r}; "
                                  "use only characters of the training text (meta.json itos)")
            return [stoi[c] for c in s]
        return encode, lambda ids: "".join(itos[i] for i in ids)
    import tiktoken
    name = meta.get("tokenizer", "gpt2")
    try:
        enc = tiktoken.get_encoding(name)
    except Exception as e:  # unknown name, or its files not cached and no network
        raise ConfigError(f"cannot load the tiktoken encoding {name!r} ({type(e).__name__}); it is "
                          "downloaded on first use: run once with network access or point TIKTOKEN_CACHE_DIR "
                          "at a cache that holds it (train.py: or set --sample_tokens=0)") from None
    return (lambda s: enc.encode(s, allowed_special={"<|endoftext|>"})), enc.decode


def main():
    configure(globals(), sys.argv[1:])
    from dataloader import read_meta
    from model import GPT, GPTConfig
    from checkpoint import list_checkpoints, load_checkpoint

    path = checkpoint
    if not path:
        best = os.path.join(out_dir, "best.pt")
        ckpts = list_checkpoints(out_dir)
        path = best if os.path.exists(best) else (ckpts[-1] if ckpts else "")
    if checkpoint and not os.path.isfile(checkpoint):
        raise ConfigError(f"--checkpoint={checkpoint} is not a file; pass a ckpt_*.pt or best.pt of a run")
    if not path or not os.path.exists(path):
        raise ConfigError(f"no checkpoint in {out_dir!r}; train one with python train.py "
                          f"--out_dir={out_dir} or pass --checkpoint=FILE")
    for k, v in dict(num_samples=num_samples, max_new_tokens=max_new_tokens, top_k=top_k).items():
        if v <= 0:
            raise ConfigError(f"{k}={v} must be positive")
    if temperature < 0:
        raise ConfigError(f"temperature={temperature} must be >= 0 (0: greedy)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} but CUDA is not available; use --device=cpu")
    ckpt = load_checkpoint(path)
    try:
        model = GPT(GPTConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
    except (TypeError, ValueError, RuntimeError) as e:
        raise ConfigError(f"checkpoint {path} does not fit this model code ({type(e).__name__}: "
                          f"{' '.join(str(e).split())[:160]}); use a checkpoint of this trainer") from None
    model.eval().to(device)
    meta = ckpt.get("meta")  # the tokenizer saved with the model; else the dataset's meta.json
    if not meta:
        cfg = ckpt.get("config", {})
        ddir = cfg.get("data_dir") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                                                   cfg.get("dataset", ""))
        meta = read_meta(ddir) or {"tokenizer": "gpt2"}
    encode, decode = load_codec(meta)
    prompt = start
    if prompt.startswith("FILE:"):
        try:
            with open(prompt[5:], encoding="utf-8") as f:
                prompt = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read the prompt file {prompt[5:]} ({e}); give a UTF-8 text file") from None
    if not prompt:
        raise ConfigError("the prompt is empty; give at least one token, e.g. --start='ROMEO:'")
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
