#!/bin/bash
# Train on N nodes under SLURM: srun starts one torchrun per node, torchrun one train.py per GPU,
# rendezvous over c10d on the first node. Preemption-safe: SLURM's warning signal reaches this
# batch shell (B:), which forwards it to the training step; train.py saves a checkpoint at the
# next step boundary and exits, and this script requeues the job, which resumes from that
# checkpoint (init_from='auto'). A run that stops by itself (halt_at_iter, or a SIGTERM that
# reached only the workers) is requeued too: torchrun turns the workers' exit 4 into 1, so
# "stopped" is read from the run's own record, a final.json this job wrote (not one an earlier
# stop left: a resumed run that then crashes exits with its code). Submit from the repository root:
#
#   sbatch --nodes=4 scripts/slurm_train.sh config/gpt2_small_owt.py --out_dir=out-gpt2-owt
#
# Everything after the script name goes to train.py. Edit the #SBATCH lines (or override
# them on the sbatch command line) for your cluster: partition, account, GPUs, time.
#SBATCH --job-name=completep
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --time=24:00:00
#SBATCH --signal=B:TERM@300
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=slurm-%x-%j.out
set -uo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"

NNODES=${SLURM_NNODES:-1}
NPROC=${NPROC_PER_NODE:-${SLURM_GPUS_ON_NODE:-8}}
HEAD=$(scontrol show hostnames "${SLURM_JOB_NODELIST:-localhost}" | head -n 1)
PORT=${MASTER_PORT:-29500}
# seconds torchrun gives train.py to save after SIGTERM (keep it below the --signal lead time)
GRACE=${SHUTDOWN_GRACE:-240}

# "<status> <inode mtime size>" of the run's final.json, its out_dir resolved from these
# arguments as train.py does ("none" without one; "" if they do not parse: train.py says why)
record() {
    python - "$@" 2>/dev/null <<'EOF'
import sys
sys.path.insert(0, ".")
import runs
print(runs.final_record(runs.train_out_dir(sys.argv[1:])))
EOF
}
BEFORE=$(record "$@")

echo "$(date '+%F %T') job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}): $NNODES node(s) x $NPROC, rendezvous $HEAD:$PORT"
srun --kill-on-bad-exit=1 python -m torch.distributed.run \
    --nnodes="$NNODES" --nproc_per_node="$NPROC" \
    --rdzv_backend=c10d --rdzv_endpoint="$HEAD:$PORT" --rdzv_id="${SLURM_JOB_ID:-local}" \
    --shutdown_timeout="$GRACE" \
    train.py "$@" &
STEP=$!

STOPPING=0
on_term() {
    STOPPING=1
    echo "$(date '+%F %T') SIGTERM: train.py saves at the next step boundary"
    kill -TERM "$STEP" 2>/dev/null
}
trap on_term TERM

RC=0
while true; do  # `wait` returns early when the trap runs; wait again until the step is gone
    wait "$STEP"
    RC=$?
    kill -0 "$STEP" 2>/dev/null || break
done

AFTER=$(record "$@")
if [ "$STOPPING" = 1 ] || { [ "$AFTER" != "$BEFORE" ] && [ "${AFTER%% *}" = stopped ]; }; then
    echo "$(date '+%F %T') stopped (exit $RC); requeueing job ${SLURM_JOB_ID:-?} to resume"
    scontrol requeue "${SLURM_JOB_ID}"
    exit 0
fi
echo "$(date '+%F %T') training exited with $RC"
exit "$RC"
