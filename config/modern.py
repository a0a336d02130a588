# The Complete(d)P-style block (arXiv 2512.22382): RMSNorm, QK-norm, rotary positions, a SwiGLU
# MLP, no biases, untied embeddings, a z-loss; everything else is train.py's default run
# (character-level Shakespeare, 4 layers x 128 wide, proxy shape 2 x 64). Its tensors map one
# for one onto Hugging Face's Qwen3 layout (q/k/v/o projections, per-head q/k RMSNorm gains,
# gate/up/down), so an export can be exact (docs/parameterization.md section 2c).
#   python train.py config/modern.py
parameterization = "completedp"
norm = "rmsnorm"
qk_norm = True
pos = "rope"
rope_theta = 10000.0
mlp = "swiglu"               # hidden width ceil(8/3 * n_embd): 342 at 128 wide
bias = False
tie_embeddings = False       # completedp keeps the unembedding's 1/m_N in its own weights
z_loss = 1e-4                # + 1e-4 * mean(logsumexp(logits)^2); val_loss stays cross-entropy
out_dir = "out-modern"
