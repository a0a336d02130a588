"""
Search per-module hyperparameter multipliers (`module_hparams`) on a small proxy, starting from
the best global hyperparameters, and write the best set as a config file, searched_modules.py,
that scripts/transfer.py hands to a larger model (Complete(d)P's per-module transfer, arXiv 2512.22382).

    python scripts/search.py config/module_transfer/proxy.py --from_sweep experiments/batch_duration/results.csv --dry_run
    python scripts/search.py config/search_proxy.py --learning_rate=2**-7 --trials 40
    python scripts/search.py config/search_proxy.py --trials 40 --jobs 2 --threads 2
    python scripts/search.py config/search_proxy.py --trials 48 --pack 6 --space lr,init_std,wd,depth:lr
    python scripts/search.py config/search_proxy.py --space lr,init_std:embedding,residual --sampler cmaes
    python scripts/transfer.py --from_search runs/search/search_proxy --target config/<target>.py --out target.py
    python train.py target.py                          # the transfer: the proxy's recipe at the target's shape

The start point (--from_sweep CSV, a results file of scripts/sweep.py; the first example reads the
committed experiments/batch_duration sweep, whose completedp base arm ran that proxy's recipe):
the learning_rate (and init_std, where the sweep varied it or ran another one than the proxy's)
with the lowest val_loss averaged over seeds, among the sweep's finished rows at the proxy's
settings: equal to the proxy in every setting column but learning_rate, init_std and seed, and in
every setting that shapes a result as the run's config.json (or, without the run, its sweep file
under experiments/) resolved it. Every trial runs that point's seeds (unless --seeds or --set seed
say otherwise), so trial 0 reruns the sweep's point: its value is the sweep's. A sweep with no row
at the proxy's settings is one line naming what its nearest rows differ in, the sweep file that
runs this proxy (or that none does) and the proxy config under config/ its rows ran.

What is searched (--space): a comma list of items; `lr`, `wd`, `init_std`, `eps`, `beta1`,
`beta2` (that multiplier for every module type of the proxy's model it applies to: the GPT-2
block's fused attn_qkv, the modern block's attn_q, attn_k, attn_v, the two block norms apart;
norm gains have no init_std or wd), `lr:attn_q` (one module type, or a group name: attn_qkv,
block_norm), `residual` (both branch multipliers) or `residual:attn`, and `depth:lr` (the type x
depth factorisation: one factor per proxy layer, multiplying every block type's lr there; any
hyperparameter). Each is a log2-multiplier in [-bound, bound] (multiplier 2^x, x = 0 at the start
point). Default: `lr,init_std,wd,residual,depth:lr`, the paper's space (arXiv 2512.22382: module
types x LR, init and WD, residual multipliers, a depth factor) without its eps and betas, which
`eps,beta1,beta2` add: the paper's full text was not readable here (docs/parameterization.md 2c).
A proxy trained without weight decay (weight_decay = 0, as the CompleteP paper's settings) has
no `wd` items in the default space (a multiplier of 0 changes nothing), and naming one is refused.

The method (--sampler trust_region, the default): a local trust-region random search in log
space around the best point so far, as the paper proposes for the jagged per-module landscape.
The first trial is the start point (every multiplier 1). Each further trial draws every
log2-multiplier uniformly (or --distribution gaussian, truncated) within --radius of the
incumbent, inside the box; the centre moves only to a trial that improves on the best loss; after
--patience finished trials in a row without improvement the radius shrinks by --shrink (down to
--min_radius); an improvement multiplies it by --expand (1: never grows). `--sampler cmaes`
(Optuna's CmaEsSampler, x0 the start point, sigma0 the radius) and `--sampler random` (uniform in
the box) are the alternatives.

Bookkeeping is Optuna's (ask/tell) in a journal file, <out_root>/journal.log (or --storage
sqlite:///FILE.db): stop the search at any point (Ctrl-C, SIGTERM) and the same command
continues it; several processes (--jobs N here, or the same command on other machines sharing
out_root) run one study together; `optuna-dashboard <out_root>/journal.log` shows it. A record
torn by a kill or a full disk mid-append is moved aside (journal.log.torn-<time>, with a note)
before the next append, which starts on a fresh line; a torn line with records after it (an
older search.py glued the next record to it) is one error line saying what to delete. Each trial
is a train.py run in <out_root>/trials/tNNNN. Its value is final.json's val_loss; with --seeds
S1,S2,... a trial is one run per seed in tNNNN/s<seed>, one after another, and its value their mean
(a proxy whose seed-to-seed spread is as large as the gains searched for needs it); a diverged run
(exit 3) or a failed one is told to Optuna as TrialState.FAIL (no penalty value) with its status
and error as user attributes, and the search goes on; a run stopped by a signal, or orphaned by
a killed search, is marked FAIL 'stopped'/'lost' and queued again with the same parameters (and
out_dir). --trials counts the evaluated trials (complete or failed) in the storage. With wandb on
(wandb_log = True in the proxy config, or --set wandb_log=True), every run logs to the wandb group
of the study's name (--name) as 't0003' (with --seeds 't0003 s0'), so a search is one view there.

--pack K trains trials as packs (pack.py: one process, one stacked model, each run its own out_dir
and records): K trials are asked together (a generation; the trust-region sampler draws them all
from one state, as it would for K jobs started at once), and their runs (every --seeds seed)
whose settings differ only in values share one process; a generation's processes run one after
another, --jobs generations at a time. The residual multipliers are forward multipliers, which
the members of a pack must share (grid.pack_key): trials that differ in them run as packs of one,
so pack a space without `residual` (e.g. --space lr,init_std,wd,depth:lr).

Writes, after every trial: <out_root>/searched_modules.py (the best set), <out_root>/trials.md
(a table of the trials) and, at the end, <out_root>/progress.png (best loss against trials),
each whole or not at all (a temporary file, fsynced, renamed). A file that cannot be written
(a full disk) stops the search with one line; the storage keeps every trial, so the same
command continues it.

Exit codes: 0 the budget is spent; 1 stopped after 3 trials in a row errored (not diverged: a
broken command or environment); 2 a bad argument (one line); 4 stopped by SIGTERM/SIGINT
(resumable: run the same command again).
"""
import argparse
import ast
import contextlib
import difflib
import fcntl
import functools
import glob
import importlib.util
import io
import json
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import results  # noqa: E402
from grid import RUN_CONTROL, child_env, expand, fresh_out_dir, load_sweep, pack_key, wandb_names  # noqa: E402
from configurator import parse  # noqa: E402
from runs import (CONTROL, EXIT_DIVERGED, EXIT_STOPPED, UserError, append_line, die_with_parent,  # noqa: E402
                  last_line, lock_owner, log_tail, pid_alive, read_final, run_cli, stop_children,
                  train_defaults, write_atomic)
from util import hms, number  # noqa: E402

try:
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage
    from optuna.trial import TrialState
except ImportError:  # reported as one line by main()
    optuna = None

SAMPLERS = ("trust_region", "cmaes", "random")
NOT_EVALUATED = ("stopped", "lost")  # FAIL trials that never produced a result: queued again
SEARCH_SETS = ("learning_rate", "init_std", "module_hparams", "out_dir")  # per trial, not --set
MAX_ERRORS_IN_A_ROW = 3


def model_constants():
    """Module-type names of model.py, read without importing torch: MODULE_TYPES, TYPE_GROUPS,
    NORM_TYPES, MODULE_HPARAMS, RESIDUAL_BRANCHES."""
    path = os.path.join(REPO, "model.py")
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    wanted = ("MODULE_TYPES", "TYPE_GROUPS", "NORM_TYPES", "MODULE_HPARAMS", "RESIDUAL_BRANCHES")
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and getattr(node.targets[0], "id", None) in wanted:
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return tuple(out[k] for k in wanted)


MODULE_TYPES, TYPE_GROUPS, NORM_TYPES, MODULE_HPARAMS, RESIDUAL_BRANCHES = model_constants()
DEFAULT_SPACE = "lr,init_std,wd,residual,depth:lr"


def present_types(config):
    """The concrete module types of the proxy's model (model.module_types: the GPT-2 block's fused
    attn_qkv or the modern block's attn_q/k/v, qk_norm and mlp_gate where present, the unembedding
    when untied), as the proxy's settings make it."""
    import model  # torch: only where a space is built
    keys = ("norm", "qk_norm", "pos", "mlp", "tie_embeddings")
    try:
        cfg = model.GPTConfig(**{k: config[k] for k in keys if k in config})
    except ValueError as e:
        raise UserError(f"the proxy config: {e}") from None
    return model.module_types(cfg)


# --- the search space: log2-multipliers named "<module type>.<hp>", "residual.<branch>" or
# "depth.<hp>.<proxy layer>" ---

def _unknown(kind, name, choices):
    hint = difflib.get_close_matches(name, choices, n=1)
    return UserError(f"--space: unknown {kind} {name!r}" + (f"; did you mean {hint[0]!r}?" if hint
                                                           else f"; use one of {', '.join(choices)}"))


def build_space(spec, config, bound):
    """{name: (low, high)} in log2 units, in the order the spec names them."""
    items = [s.strip() for s in spec.split(",")]
    if not spec.strip() or not all(items):
        raise UserError(f"--space {spec!r} has an empty item; give a comma list like lr,residual")
    types = present_types(config)
    names = []
    for item in items:
        what, colon, only = item.partition(":")
        if what == "residual":
            if only and only not in RESIDUAL_BRANCHES:
                raise _unknown("residual branch", only, RESIDUAL_BRANCHES)
            names += [f"residual.{b}" for b in ([only] if colon else RESIDUAL_BRANCHES)]
            continue
        if what == "depth":  # the type x depth factorisation: one factor per proxy layer
            if only not in MODULE_HPARAMS:
                raise (UserError("--space depth needs a hyperparameter, like depth:lr (one log2-factor per "
                                 "proxy layer, shared by the block's module types)") if not only
                       else _unknown("depth hyperparameter", only, MODULE_HPARAMS))
            names += [f"depth.{only}.{i}" for i in range(config["base_n_layer"])]
            continue
        if what not in MODULE_HPARAMS:
            raise _unknown("item", what, MODULE_HPARAMS + ("residual", "depth"))
        if what == "wd" and config["weight_decay"] == 0:  # a multiplier of 0 is 0: a dimension that does nothing
            raise UserError(f"--space {item}: the proxy's weight_decay is 0, so weight-decay multipliers change "
                            "nothing; drop the item (the default space then is lr,init_std,residual,depth:lr) or "
                            "give the proxy a weight_decay")
        if colon:
            if only not in MODULE_TYPES:
                raise _unknown("module type", only, MODULE_TYPES)
            if only == "unembedding" and config["tie_embeddings"]:
                raise UserError(f"--space {item}: the proxy ties its embeddings (no unembedding module); "
                                "set tie_embeddings = False in the proxy config or drop the item")
            if only not in types and not set(TYPE_GROUPS.get(only, ())) & set(types):
                raise UserError(f"--space {item}: the proxy's model has no {only} (its module types: "
                                f"{', '.join(types)})")
            if only in NORM_TYPES and what in ("init_std", "wd"):
                raise UserError(f"--space {item}: norm gains have no {what} multiplier (they start at 1/0, without "
                                "weight decay)")
            names.append(f"{only}.{what}")
        else:
            names += [f"{t}.{what}" for t in types if not (t in NORM_TYPES and what in ("init_std", "wd"))]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise UserError(f"--space {spec!r} names {', '.join(dup)} twice; give each once")
    for group, members in TYPE_GROUPS.items():
        for n in names:
            mtype, _, hp = n.partition(".")
            both = [m for m in members if f"{m}.{hp}" in names]
            if mtype == group and both:
                raise UserError(f"--space {spec!r} names {n} and {both[0]}.{hp}: {group} covers "
                                f"{', '.join(members)}; give the group or its members")
    space = {}
    for n in names:
        hp = n.split(".")[1]
        high = bound
        if hp in ("beta1", "beta2"):  # the multiplier scales 1 - beta: keep beta >= 0.001
            one_minus = 1.0 - config[hp]
            if one_minus >= 0.999:
                raise UserError(f"--space {hp}: the proxy's {hp}={config[hp]} leaves no room to search 1 - {hp}")
            high = min(bound, math.log2(0.999 / one_minus))
        space[n] = (-bound, high)
    return space


def module_hparams(params):
    """The train.py setting for a point: {type: {hp: 2**x}}, sorted, floats exact; the depth items
    depth.<hp>.<i> become {"depth": {hp: [one value per proxy layer]}}."""
    out, depth = {}, {}
    for name in sorted(params):
        mtype, hp, *layer = name.split(".")
        if mtype == "depth":
            depth.setdefault(hp, {})[int(layer[0])] = 2.0 ** float(params[name])
        else:
            out.setdefault(mtype, {})[hp] = 2.0 ** float(params[name])
    if depth:
        out["depth"] = {hp: [v[i] for i in sorted(v)] for hp, v in sorted(depth.items())}
    return out


def distributions(space):
    return {n: FloatDistribution(lo, hi) for n, (lo, hi) in space.items()}


# --- the trust-region sampler (arXiv 2512.22382: local random search around the incumbent) ---

class TrustRegion:
    """The sampler's state, replayed from the finished trials: centre (log2 point), radius,
    best value and trial, and the non-improving trials since the last change."""

    def __init__(self, centre, radius):
        self.centre, self.radius = dict(centre), radius
        self.best_value, self.best_trial, self.misses = math.inf, None, 0

    def __repr__(self):
        return f"TrustRegion(radius={self.radius:.4g}, best={self.best_value:.6g} @ {self.best_trial})"


class TrustRegionSampler(optuna.samplers.BaseSampler if optuna else object):
    """Local trust-region random search in log space (Mlodozeniec et al., arXiv 2512.22382,
    per-module search). Every parameter is a log2-multiplier; a trial draws each one uniformly
    (or from a Gaussian of std radius/2, truncated) within `radius` of the incumbent's value and
    inside its bounds, so the region is a box of half-width `radius` around the best point.
    The state is not kept in memory: it is replayed from the study's finished trials in the order
    they finished, so every process sharing a storage, and a restarted search, sees the same one:
      - a complete trial with a lower value than the best so far becomes the centre (only then
        does the centre move), and the radius is multiplied by `expand` (capped at `max_radius`);
      - any other finished trial (worse, or failed: a diverged run counts as a miss) is a miss;
        after `patience` misses in a row the radius is multiplied by `shrink` (floored at
        `min_radius`) and the count restarts.
    Trials never evaluated (user attribute status 'stopped' or 'lost') are skipped. Draws are
    seeded by (seed, trial number): independent of which process asks, reproducible."""

    def __init__(self, space, radius=1.0, patience=4, shrink=0.5, expand=1.0, min_radius=1 / 16,
                 max_radius=None, distribution="uniform", seed=0, centre=None):
        self.space = distributions(space) if isinstance(next(iter(space.values()), None), tuple) else dict(space)
        self.radius0, self.patience, self.shrink, self.expand = radius, patience, shrink, expand
        self.min_radius = min_radius
        self.max_radius = max_radius if max_radius is not None else max(
            [d.high - d.low for d in self.space.values()] + [radius])
        self.distribution, self.seed = distribution, seed
        self.centre0 = dict(centre) if centre else {n: 0.0 for n in self.space}

    def state(self, study):
        tr = TrustRegion(self.centre0, self.radius0)
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
                if t.user_attrs.get("status") not in NOT_EVALUATED]
        done.sort(key=lambda t: (t.datetime_complete or t.datetime_start, t.number))
        for t in done:
            if t.state == TrialState.COMPLETE and t.value < tr.best_value:
                tr.best_value, tr.best_trial = t.value, t.number
                tr.centre = {n: t.params.get(n, self.centre0[n]) for n in self.space}
                tr.radius, tr.misses = min(tr.radius * self.expand, self.max_radius), 0
            else:
                tr.misses += 1
                if tr.misses >= self.patience:
                    tr.radius, tr.misses = max(tr.radius * self.shrink, self.min_radius), 0
        return tr

    def infer_relative_search_space(self, study, trial):
        return dict(self.space)

    def sample_relative(self, study, trial, search_space):
        if not search_space:
            return {}
        tr = self.state(study)
        rng = np.random.default_rng([self.seed, trial.number])
        return {n: self._draw(rng, tr.centre.get(n, 0.0), tr.radius, d) for n, d in search_space.items()}

    def _draw(self, rng, centre, radius, dist):
        lo, hi = max(dist.low, centre - radius), min(dist.high, centre + radius)
        if self.distribution == "gaussian":
            for _ in range(100):  # truncated to the region by rejection (95% of the mass is inside)
                x = centre + rng.normal(0.0, radius / 2)
                if lo <= x <= hi:
                    return float(x)
            return float(min(max(x, lo), hi))
        return float(rng.uniform(lo, hi))

    def sample_independent(self, study, trial, param_name, param_distribution):
        # only for a parameter outside `space` (none when trials are asked with it): the box
        rng = np.random.default_rng([self.seed, trial.number, len(param_name)])
        return float(rng.uniform(param_distribution.low, param_distribution.high))


def make_sampler(args, space):
    if args.sampler == "trust_region":
        return TrustRegionSampler(space, radius=args.radius, patience=args.patience, shrink=args.shrink,
                                  expand=args.expand, min_radius=args.min_radius,
                                  distribution=args.distribution, seed=args.seed)
    if args.sampler == "cmaes":
        if importlib.util.find_spec("cmaes") is None:  # Optuna's CmaEsSampler needs it
            raise UserError("--sampler cmaes needs the cmaes package (pip install -r requirements.txt)")
        # Optuna's CMA-ES works on the box mapped to [0, 1] per dimension and reads sigma0 there:
        # the radius (log2 units) over the narrowest dimension's width
        width = min(hi - lo for lo, hi in space.values())
        return optuna.samplers.CmaEsSampler(x0={n: 0.0 for n in space}, sigma0=args.radius / width, seed=args.seed,
                                            warn_independent_sampling=False)
    return optuna.samplers.RandomSampler(seed=args.seed)


# --- the start point: the best global hyperparameters of a sweep run at the proxy's settings ---

# What a start point taken from a sweep does not compare with the proxy: the start point itself
# (learning_rate, init_std), the seed (trial 0 runs the sweep point's seeds) and what steers a run
# but not its result (grid.RUN_CONTROL). module_hparams is compared: the proxy has none (setup), and
# a row run with multipliers is not the start point, every multiplier 1.
START_KEYS = ("learning_rate", "init_std", "seed")
SWEEP_DIRS = ("experiments/*/*.py", "experiments/*/*/*.py")  # where sweep files live
PROXY_DIRS = ("config/*.py", "config/*/*.py")  # where a proxy config may live


def rel(path):
    return os.path.relpath(path, REPO) if os.path.abspath(path).startswith(REPO + os.sep) else path


def _plain(v):
    return json.loads(json.dumps(v))  # as config.json holds it: lists, not tuples


def recipe_diff(theirs, ours):
    """The settings that shape a run's result in which a run's resolved config (`theirs`) differs
    from the proxy's (`ours`), as (key, theirs, ours); settings `theirs` predates are not compared."""
    ours = _plain(ours)
    return [(k, theirs[k], v) for k, v in ours.items()
            if k in theirs and k not in RUN_CONTROL + START_KEYS and theirs[k] != v]


def _same(cell, value):
    """Does a results cell (results.field wrote it) hold this setting's value?"""
    if isinstance(value, dict):
        try:
            return json.loads(cell) == _plain(value)
        except ValueError:
            return False
    if value is None or isinstance(value, (bool, str)):
        return cell == str(value)
    return number(cell, cell=True) == value


@functools.lru_cache(maxsize=None)
def sweep_files():
    """{sweep name: [(file, {absolute out_dir: resolved config})]} of the sweep files in the tree
    (scripts/sweep.py's load_sweep and grid.expand, run for their default out_root); a .py there
    that is not a sweep file is skipped."""
    defaults, annotations = train_defaults()
    out = {}
    for path in sorted({p for pattern in SWEEP_DIRS for p in glob.glob(os.path.join(REPO, pattern))}):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                settings, axes, fixed = load_sweep(path, defaults)
                root = os.path.join(REPO, settings.get("out_root") or os.path.join("runs", settings["name"]))
                points = expand(settings, axes, fixed, {}, defaults, annotations, root)
        except Exception:  # noqa: BLE001  not a sweep file (a searched_modules.py), or a broken one
            continue
        out.setdefault(settings["name"], []).append((path, {os.path.abspath(p["out_dir"]): p["config"]
                                                            for p in points}))
    return out


def row_recipe(r):
    """(where it was read, resolved config) of the run a results row records: its out_dir's
    config.json, else the point of the sweep file of its name with that out_dir; (None, None)
    when neither is here (the row's columns are then all there is to compare)."""
    out_dir = os.path.abspath(os.path.join(REPO, r["out_dir"])) if r.get("out_dir") else None
    if out_dir is None:
        return None, None
    try:
        with open(os.path.join(out_dir, "config.json")) as f:
            theirs = json.load(f)["config"]
        if isinstance(theirs, dict):
            return "its run's config.json", theirs
    except (OSError, ValueError, KeyError, TypeError):
        pass
    for path, points in sweep_files().get(r.get("sweep"), []):
        if out_dir in points:
            return f"the sweep file {rel(path)}", _plain(points[out_dir])
    return None, None


def row_differences(r, columns, config):
    """What a finished row's run and the proxy differ in: [(key, theirs, ours)] over the row's
    setting columns, then its whole resolved config (row_recipe) where that is here."""
    diff = [(k, r[k], config[k]) for k in columns if not _same(r[k], config[k])]
    if not diff:
        diff = recipe_diff(row_recipe(r)[1] or {}, config)
    return diff


def sweeps_for(config):
    """The sweep files in the tree with a point at the proxy's settings (any learning_rate,
    init_std and seed)."""
    return [rel(path) for name, files in sweep_files().items() for path, points in files
            if any(not recipe_diff(_plain(c), config) for c in points.values())]


def proxies_for(rows, columns):
    """The config files under config/ that, alone, are a proxy some finished row ran."""
    defaults, annotations = train_defaults()
    found = []
    for path in sorted({p for pattern in PROXY_DIRS for p in glob.glob(os.path.join(REPO, pattern))}):
        if os.sep + "sweeps" + os.sep in path:
            continue
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                c = parse(defaults, [path], annotations)[0]
        except Exception:  # noqa: BLE001  a config this search could not run either
            continue
        if c["module_hparams"]:
            continue
        if any(not row_differences(r, [k for k in columns if k in c], c) for r in rows):
            found.append(rel(path))
    return found


def _shown(values, n=6):
    values = list(dict.fromkeys(values))
    return ", ".join(map(str, values[:n])) + (", ..." if len(values) > n else "")


def no_match(path, config, configs, rows, columns):
    """The error of a sweep with no finished row at the proxy's settings: what its nearest rows
    and the proxy disagree on, the sweep files in the tree that run this proxy, and the proxy
    configs under config/ that its rows ran."""
    c = config
    proxy = " ".join(rel(p) for p in configs)
    head = (f"--from_sweep {path} has no done row at the proxy's {c['parameterization']} {c['n_layer']} x "
            f"{c['n_embd']} ({proxy}, its other settings included)")
    if rows:
        diffs = [row_differences(r, columns, config) for r in rows]
        nearest = min(len(d) for d in diffs)
        keys = list(dict.fromkeys(k for d in diffs if len(d) == nearest for k, _, _ in d))[:4]
        said = []
        for k in keys:
            theirs = _shown(t for d in diffs if len(d) == nearest for k2, t, _ in d if k2 == k)
            said.append(f"{k} {theirs} there, {config[k]!r} in the proxy")
        head += f": its nearest rows differ in {'; '.join(said)}"
    else:
        head += ": it holds no finished row"
    sweeps = sweeps_for(config)
    if sweeps:
        tail = (f"; the sweep for this proxy: python scripts/sweep.py {sweeps[0]}"
                + (f" (or {', '.join(sweeps[1:3])})" if len(sweeps) > 1 else "")
                + ", then --from_sweep its results.csv")
    else:
        tail = ("; no sweep file under experiments/ runs this proxy: write one with base_config = "
                f"{proxy.split()[-1]!r} and an axis learning_rate = [2**-9, 2**-8, ...], run it with "
                "scripts/sweep.py, then --from_sweep its results.csv")
    proxies = proxies_for(rows, columns) if rows else []
    if proxies:
        tail += (f"; the proxy config this sweep's rows ran: {', '.join(proxies[:3])} (python scripts/search.py "
                 f"{proxies[0]} --from_sweep {path})")
    return head + tail


def from_sweep(path, config, configs=()):
    """(learning_rate, init_std or None, seeds, note) of the best (lowest mean val_loss over
    seeds) setting of a sweep's results CSV among its finished rows at the proxy's settings: equal
    in every setting column but the start point's and the seed, and, where the run's config.json
    or the sweep file is here, in every setting that shapes a result (recipe_diff). A setting
    with a diverged seed is not a candidate. `seeds`: the seeds that setting ran (trial 0 reruns
    them, so its value is the sweep's), or None without a seed column. init_std is returned when
    the sweep varies it or ran another one than the proxy's."""
    if not os.path.isfile(path):
        raise UserError(f"--from_sweep {path} " + ("is a directory, not a file" if os.path.isdir(path)
                                                    else "does not exist") + "; give a sweep's results.csv")
    need = ("status", "learning_rate", "val_loss")
    header, rows = results.read_csv(path, need)  # binary, torn or header-less files refused in one line
    if not rows:
        raise UserError(f"--from_sweep {path} has no rows with columns {', '.join(need)}; give a sweep's results.csv")
    columns = [k for k in header if k in config and k not in results.NOT_SETTINGS + START_KEYS + RUN_CONTROL]
    finished = [r for r in rows if r["status"] in results.FINISHED]
    at_proxy = [r for r in finished if not row_differences(r, columns, config)]
    if not at_proxy:
        raise UserError(no_match(path, config, configs, finished, columns))
    groups, seeds = {}, {}
    for r in at_proxy:
        std = number(r["init_std"], cell=True) if r.get("init_std") else None
        key = (number(r["learning_rate"], cell=True), std)
        loss = number(r["val_loss"], cell=True) if r["status"] == "done" else math.inf
        if any(v is not None and math.isnan(v) for v in (*key, loss)):
            raise UserError(f"--from_sweep {path}: a row has a learning_rate, init_std or val_loss that is "
                            f"not a number: {dict(r)}")
        groups.setdefault(key, []).append(loss)
        if "seed" in r:
            seeds.setdefault(key, []).append(int(number(r["seed"], cell=True)))
    finite = {k: sum(v) / len(v) for k, v in groups.items() if all(map(math.isfinite, v))}
    if not finite:
        raise UserError(f"--from_sweep {path}: every setting at the proxy's {config['parameterization']} "
                        f"{config['n_layer']} x {config['n_embd']} diverged in a seed; give --learning_rate instead")
    (lr, std), loss = min(finite.items(), key=lambda kv: (kv[1], kv[0][0]))
    varies = len({k[1] for k in groups}) > 1
    n = len(groups[(lr, std)])
    ran = sorted(set(seeds[(lr, std)])) if (lr, std) in seeds else None
    checked = {row_recipe(r)[0] for r in at_proxy}
    how = ("its rows' columns only (neither the runs' config.json nor the sweep file is here)" if checked == {None}
           else "every setting" + ("" if None not in checked else " where the run or its sweep file is here"))
    note = (f"best of {rel(path)} at the proxy's settings ({how}): mean val_loss {loss:.6g} over {n} run(s)"
            + (f", seed(s) {', '.join(map(str, ran))}" if ran else ""))
    return lr, std if varies or (std is not None and std != config["init_std"]) else None, ran, note


# --- storage and study ---

class FileLock:
    """flock on <out_root>/search.lock: one process at a time creates the study, counts the
    budget and claims a trial."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.f = open(self.path, "a")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def make_storage(args):
    if args.storage and "://" in args.storage:
        return optuna.storages.RDBStorage(args.storage)
    path = args.storage or os.path.join(args.out_root, "journal.log")
    check_journal(path)
    return JournalStorage(Journal(path))


class Journal(JournalFileBackend if optuna else object):
    """Optuna's journal file, whose every append starts on a fresh line: a tail torn by a kill or
    a full disk mid-append is moved aside first (Optuna's own append would glue the record to
    it, and every later read of the journal, by every process, would die on that line)."""

    def append_logs(self, logs):
        self._lock.acquire()
        try:
            _repair_tail(self._file_path)
            append_line(self._file_path, "\n".join(json.dumps(log, separators=(",", ":")) for log in logs))
        finally:
            self._lock.release()


def check_journal(path):
    """Before Optuna reads a journal, under its lock: a torn tail (the last record cut short: no
    newline, or a line that is not JSON) is moved aside with a note, keeping a whole record an
    older search.py glued to it; a torn line with records after it, which Optuna cannot read
    past, is one error line saying what to delete."""
    if not os.path.isfile(path):
        return
    lock = JournalFileSymlinkLock(path)
    lock.acquire()
    try:
        _repair_tail(path)
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        offset = 0
        for k, line in enumerate(lines):
            if not _is_json(line):
                glued = line.rfind(b'{"op_code"')  # a whole record appended right after the torn one
                keep = line[glued:] if glued > 0 and _is_json(line[glued:]) else b""
                torn = line[:len(line) - len(keep)]
                if k < len(lines) - 1:
                    raise UserError(f"{path} line {k + 1} is not a journal record ({torn[:60]!r}..., {len(torn)} bytes "
                                    "cut short by a kill or a full disk" + (", glued to the next record" if keep else "")
                                    + f", with {len(lines) - k - 1} records after it); Optuna cannot read past it: keep "
                                    "a copy of the file, delete " + (f"the first {len(torn)} bytes of that line" if keep
                                                                     else "that line") + ", and run the command again")
                _move_torn(path, offset, torn, keep)
            offset += len(line) + 1
    finally:
        lock.release()


def _is_json(line):
    try:
        json.loads(line)
        return True
    except ValueError:
        return False


def _repair_tail(path):
    """Under the journal's lock: move a last line without its newline aside (see check_journal).
    Reads one byte when the journal is whole."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - 1))
        if f.read(1) in (b"", b"\n"):
            return
        start = size
        while start > 0:  # back to the last newline
            f.seek(max(0, start - 65536))
            chunk = f.read(start - max(0, start - 65536))
            cut = chunk.rfind(b"\n")
            start -= len(chunk)
            if cut >= 0:
                start += cut + 1
                break
        f.seek(start)
        torn = f.read()
    whole = _is_json(torn)  # cut between a record and its newline: completed, nothing lost
    _move_torn(path, start, b"" if whole else torn, torn if whole else b"")


def _move_torn(path, start, torn, keep=b""):
    """Replace the journal's bytes from `start` on by `keep` (a whole record, or nothing), the
    torn ones moved to <path>.torn-<time>, and say in one line what was lost."""
    aside = f"{path}.torn-{time.strftime('%Y%m%d-%H%M%S')}"
    if torn:
        with open(aside, "ab") as f:
            f.write(torn)
            os.fsync(f.fileno())
    with open(path, "r+b") as f:
        f.truncate(start)
        f.seek(start)
        f.write(keep + b"\n" if keep else b"")
        os.fsync(f.fileno())
    if torn:
        print(f"note: {path} ended in a torn record ({len(torn)} bytes cut short by a kill or a full disk mid-append, "
              f"never read by Optuna: {torn[:60]!r}...); moved to {aside}, the search goes on without it", flush=True)


def storage_exists(args):
    if args.storage and "://" in args.storage:
        m = re.match(r"sqlite:///(.*)", args.storage)
        return bool(m) and os.path.isfile(m.group(1))
    return os.path.isfile(args.storage or os.path.join(args.out_root, "journal.log"))


def portable(path):
    """A config path as a search's identity records it: relative to the repository when it lies
    there, so that clones at other paths and other machines can share one storage; else absolute.
    A path recorded by a clone elsewhere matches by its longest tail that names a file here."""
    a = os.path.abspath(path)
    if a.startswith(REPO + os.sep):
        return os.path.relpath(a, REPO)
    parts = a.split(os.sep)
    for i in range(1, len(parts)):
        if os.path.isfile(os.path.join(REPO, *parts[i:])):
            return os.path.join(*parts[i:])
    return a


def identity(args, space):
    """What makes two commands the same search: they must agree to share a storage."""
    ident = dict(configs=[portable(c) for c in args.configs], set=args.set_items, learning_rate=args.lr0, init_std=args.std0,
                 space=",".join(space), bound=args.bound)
    return dict(ident, seeds=args.seeds) if args.seeds else ident  # storages made before --seeds match


def open_study(args, space, sampler):
    """Create or load the study; a new one gets the start point queued as its first trial."""
    storage = make_storage(args)
    study = optuna.create_study(storage=storage, study_name=args.name, sampler=sampler,
                                direction="minimize", load_if_exists=True)
    if study.user_attrs.get("search") is None:
        study.set_user_attr("search", identity(args, space))
        study.set_user_attr("note", "params are log2 multipliers: module_hparams[type][hp] = 2**value")
        if not study.get_trials(deepcopy=False):
            study.enqueue_trial({n: 0.0 for n in space}, user_attrs={"start_point": True})
    check_identity(study, args, space)
    return study


def check_identity(study, args, space):
    old, ident = study.user_attrs.get("search"), identity(args, space)
    if old is not None and isinstance(old.get("configs"), list):  # recorded by another clone, or absolute
        old = dict(old, configs=[portable(c) for c in old["configs"]])
    if old is not None and old != ident:
        diff = next(k for k in {**old, **ident} if old.get(k) != ident.get(k))
        raise UserError(f"{args.out_root} holds search {args.name!r} with {diff}={old.get(diff)!r}, this command "
                        f"has {ident.get(diff)!r}; run the same command to continue it, or give another --out_root")


def counted(t):
    """A trial that uses the budget: evaluated (complete, or failed for a reason of its own) or
    in flight."""
    if t.state == TrialState.COMPLETE or t.state == TrialState.RUNNING:
        return True
    return t.state == TrialState.FAIL and t.user_attrs.get("status") not in NOT_EVALUATED


def evaluated(trials):
    return [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.FAIL)
            and t.user_attrs.get("status") not in NOT_EVALUATED]


def fail_and_requeue(study, t, status):
    """A trial that never finished: FAIL with `status`, and its parameters (and out_dir) queued
    again so the next claim runs it (a checkpointing run resumes there)."""
    optuna.trial.Trial(study, t._trial_id).set_user_attr("status", status)
    study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
    attrs = {k: v for k, v in t.user_attrs.items() if k in ("out_dir", "start_point")}
    study.enqueue_trial(dict(t.params), user_attrs=dict(attrs, rerun_of=t.number))


def reap_lost(study):
    """RUNNING trials of this host whose search process is gone (killed) and whose out_dir no
    live train.py owns: lost, queued again."""
    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        a = t.user_attrs
        out_dir = a.get("out_dir", "")
        dirs = [out_dir] + (glob.glob(os.path.join(out_dir, "s*")) if out_dir else [])
        if a.get("host") == host and not pid_alive(a.get("pid", -1)) and not any(lock_owner(d) for d in dirs):
            fail_and_requeue(study, t, "lost")


def claim(study, args, space):
    """Under the file lock: the next trial (asked with the space), or None when the budget is
    spent (trials in flight elsewhere count)."""
    with FileLock(os.path.join(args.out_root, "search.lock")):
        if sum(counted(t) for t in study.get_trials(deepcopy=False)) >= args.trials:
            return None
        trial = study.ask(distributions(space))
        out_dir = trial.user_attrs.get("out_dir") or os.path.join(args.out_root, "trials", f"t{trial.number:04d}")
        for k, v in dict(out_dir=out_dir, host=socket.gethostname(), pid=os.getpid()).items():
            trial.set_user_attr(k, v)
        return trial


# --- running trials ---

def train_command(args, params, out_dir, seed=None):
    """The train.py command of a point: the proxy config(s), --set, the start point's global
    values, the point's module_hparams and (with --seeds) the run's seed."""
    cmd = [sys.executable, os.path.join(REPO, "train.py"), *args.configs]
    cmd += [f"--{k}={v!r}" for k, v in args.set_values.items()]
    cmd += [f"--learning_rate={args.lr0!r}"] + ([f"--init_std={args.std0!r}"] if args.std0 is not None else [])
    cmd += [f"--seed={seed}"] if seed is not None else []
    trial = os.path.relpath(out_dir, os.path.join(args.out_root, "trials")).split(os.sep)  # tNNNN[/s<seed>]
    cmd += wandb_names(args.config, args.name, " ".join(trial))  # with wandb_log: the study's group, 't0003 s0'
    return cmd + [f"--module_hparams={json.dumps(module_hparams(params))}", f"--out_dir={out_dir}"]


def run_dirs(out_dir, seeds):
    """(seed, directory) of each train.py run of a trial: the trial's out_dir itself, or with
    --seeds one s<seed> directory per seed inside it."""
    return [(None, out_dir)] if not seeds else [(s, os.path.join(out_dir, f"s{s}")) for s in seeds]


def launch(trial, args, stop=None):
    """Start a trial: its runs (one, or one per --seeds seed) go one after another; a run that
    finished before the search was killed is not run again."""
    out_dir = trial.user_attrs["out_dir"]
    os.makedirs(out_dir, exist_ok=True)
    job = dict(trial=trial, out_dir=out_dir, t0=time.time(), proc=None, log=None, rc=None, args=args,
               stop=stop if stop is not None else {}, pending=run_dirs(out_dir, args.seeds), run_dir=out_dir)
    advance(job)
    return job


def advance(job):
    """Start the trial's next run that has not finished, or set job['rc'] when none is left (0)
    or one diverged before (EXIT_DIVERGED)."""
    args = job["args"]
    while job["pending"]:
        seed, run_dir = job["pending"][0]
        job["run_dir"] = run_dir
        os.makedirs(run_dir, exist_ok=True)
        final = read_final(run_dir) or {}
        if final.get("status") == "done":
            job["pending"].pop(0)
            continue
        if final.get("status") == "diverged":
            job["rc"] = EXIT_DIVERGED
            return
        fresh_out_dir(run_dir)  # from scratch (no .pt, nor fsdp's .dcp): the earlier records go
        job["log"] = open(os.path.join(run_dir, "train.log"), "a")
        job["proc"] = subprocess.Popen(train_command(args, job["trial"].params, run_dir, seed), stdout=job["log"],
                                       stderr=subprocess.STDOUT, env=child_env(args.threads_per_job), cwd=REPO,
                                       preexec_fn=die_with_parent)
        return
    job["rc"] = 0


def returncode(job):
    """None while the trial runs; else the exit code that ends it (0: every run done). A run
    that finishes well starts the next seed's, unless the search is stopping."""
    while job["rc"] is None:
        rc = job["proc"].poll()
        if rc is None:
            return None
        job["log"].close()
        job["proc"], job["log"] = None, None
        final = read_final(job["run_dir"]) or {}
        if rc == 0 and final.get("status") == "done" and job["stop"].get("signal") is None \
                and not job.get("no_advance"):
            job["pending"].pop(0)
            advance(job)
        else:
            job["rc"] = rc
    return job["rc"]


def launch_pack(trials, args, stop):
    """Start a generation of trials (--pack: asked together, so the sampler drew them from one
    state) as packs: every run of every trial that has not finished, grouped by grid.pack_key of
    its train.py settings, each group one process (pack.py, or train.py for a group of one), the
    groups one after another. A trial whose run diverged before runs nothing more."""
    runs_todo, ended = [], {}
    for t in trials:
        out_dir = t.user_attrs["out_dir"]
        os.makedirs(out_dir, exist_ok=True)
        for seed, run_dir in run_dirs(out_dir, args.seeds):
            os.makedirs(run_dir, exist_ok=True)
            status = (read_final(run_dir) or {}).get("status")
            if status == "done":
                continue
            if status == "diverged":
                ended[t.number] = True
                continue
            fresh_out_dir(run_dir)  # as advance does
            argv = train_command(args, t.params, run_dir, seed)[2:]
            config = dict(args.config, module_hparams=module_hparams(t.params), out_dir=run_dir,
                          **({"seed": seed} if seed is not None else {}))
            runs_todo.append((t.number, argv, pack_key(config)))
    groups = {}
    for number, argv, key in runs_todo:
        if number not in ended:
            groups.setdefault(key, []).append(argv)
    packs_dir = os.path.join(args.out_root, "packs")
    os.makedirs(packs_dir, exist_ok=True)
    job = dict(trials=trials, t0=time.time(), proc=None, log=None, args=args, stop=stop, groups=list(groups.values()),
               log_path=os.path.join(packs_dir, f"t{trials[0].number:04d}-t{trials[-1].number:04d}.log"))
    advance_pack(job)
    return job


def advance_pack(job):
    """Start the generation's next group, unless the search is stopping; False when none is left."""
    if job["log"]:
        job["log"].close()
        job["proc"], job["log"] = None, None
    if not job["groups"] or job["stop"].get("signal") is not None:
        return False
    group, args = job["groups"].pop(0), job["args"]
    job["log"] = open(job["log_path"], "a")
    if len(group) == 1:
        cmd = [sys.executable, os.path.join(REPO, "train.py"), *group[0]]
    else:
        spec = job["log_path"][:-len(".log")] + f"-{len(job['groups'])}.json"
        write_atomic(spec, json.dumps(dict(members=group), indent=1) + "\n")
        cmd = [sys.executable, os.path.join(REPO, "pack.py"), spec]
    job["proc"] = subprocess.Popen(cmd, stdout=job["log"], stderr=subprocess.STDOUT,
                                   env=child_env(args.threads_per_job), cwd=REPO, preexec_fn=die_with_parent)
    return True


def pack_returncode(job):
    """None while the generation runs; else its last process's exit code."""
    while True:
        rc = job["proc"].poll() if job["proc"] is not None else 0
        if rc is None:
            return None
        job["rc"] = rc
        if rc not in (0, EXIT_DIVERGED) or not advance_pack(job):
            return rc


def pack_members(job):
    """One job per trial of an ended generation, for record(): its exit code read from its runs'
    final.json (0 all done, EXIT_DIVERGED, EXIT_STOPPED, else the process's), the generation's
    wall time shared out, the pack log's last line for an error."""
    if job["log"]:
        job["log"].close()
        job["log"] = None
    tail = last_line(job["log_path"])
    share = (time.time() - job["t0"]) / len(job["trials"])
    out = []
    for t in job["trials"]:
        dirs = run_dirs(t.user_attrs["out_dir"], job["args"].seeds)
        finals = [(d, (read_final(d) or {}).get("status")) for _, d in dirs]
        rc, run_dir = 0, dirs[-1][1]
        for d, status in finals:
            if status == "diverged":
                rc, run_dir = EXIT_DIVERGED, d
                break
            if status != "done":
                rc, run_dir = (EXIT_STOPPED if status == "stopped" else (job.get("rc") or 1)), d
                break
        out.append(dict(trial=t, out_dir=t.user_attrs["out_dir"], t0=time.time() - share, proc=None, log=None,
                        rc=rc, args=job["args"], stop=job["stop"], pending=[], run_dir=run_dir,
                        tail=f"pack: {tail}" if tail else ""))
    return out


def record(study, job, stopping):
    """Tell Optuna how a finished trial ended. Returns (status, value): done with the final
    val_loss (the mean over --seeds), diverged, stopped or error with None."""
    if job["log"]:
        job["log"].close()
    if stopping:  # a run that just finished well starts no next seed
        job["no_advance"] = True
    trial, rc, args = job["trial"], returncode(job), job["args"]
    finals = [read_final(d) or {} for _, d in run_dirs(job["out_dir"], args.seeds)]
    final = read_final(job["run_dir"]) or {}
    wall = round(time.time() - job["t0"], 1)
    trial.set_user_attr("wall_s", wall)
    vals = [f.get("val_loss") for f in finals]
    if rc == 0 and all(f.get("status") == "done" and isinstance(v, (int, float)) and math.isfinite(v)
                       for f, v in zip(finals, vals)):
        trial.set_user_attr("status", "done")
        if args.seeds:
            trial.set_user_attr("seed_losses", [float(v) for v in vals])
        for k in ("train_loss", "iter"):
            if finals[-1].get(k) is not None:
                trial.set_user_attr(k, finals[-1][k])
        value = float(np.mean(vals))
        study.tell(trial, value)
        return "done", value
    if rc == EXIT_DIVERGED and final.get("status") == "diverged":
        trial.set_user_attr("status", "diverged")
        trial.set_user_attr("error", f"diverged at step {final.get('iter')}"
                            + (f" ({os.path.basename(job['run_dir'])})" if args.seeds else ""))
        study.tell(trial, state=TrialState.FAIL)
        return "diverged", None
    if rc in (EXIT_STOPPED, -signal.SIGTERM, -signal.SIGINT) or (stopping and rc != 0):
        fail_and_requeue(study, trial, "stopped")
        return "stopped", None
    tail = log_tail(job["run_dir"]) or job.get("tail", "")
    trial.set_user_attr("status", "error")
    trial.set_user_attr("error", f"exit {rc}: {tail}"[:500])
    study.tell(trial, state=TrialState.FAIL)
    return "error", None


def progress(study, job, status, value, args, sampler, running):
    trials = study.get_trials(deepcopy=False)
    done = evaluated(trials)
    complete = [t for t in done if t.state == TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value) if complete else None
    walls = [t.user_attrs["wall_s"] for t in done if "wall_s" in t.user_attrs]
    left = max(0, args.trials - len(done) - running)
    slots = max(1, min(args.jobs, left + running))
    eta = (sum(walls) / len(walls)) * (left + running) / slots if walls else 0.0
    t = job["trial"]
    what = f"val {value:.4f}" if status == "done" else status
    extra = f"  radius {sampler.state(study).radius:.3g}" if isinstance(sampler, TrustRegionSampler) else ""
    bests = f"best {best.value:.4f} (trial {best.number})" if best else "best -"
    print(f"{len(done):4d}/{args.trials}  trial {t.number:<4d} {what:<14s} {bests}{extra}  "
          f"{round(time.time() - job['t0'], 1):6.1f}s  ETA {hms(eta)}", flush=True)


def run(study, args, space, sampler):
    running, stop = [], {"signal": None}
    if args.pack > 1 and any(name.startswith("residual") for name in space):
        print("note: --pack: the space's residual multipliers are forward multipliers, which the members of a pack "
              "must share; trials that differ in them run one process each (search a space without residual to "
              "pack them)", flush=True)
    errors_in_a_row = 0

    def on_signal(signum, frame):
        stop["signal"] = signum
        for j in running:  # train.py stops at a step boundary (saving, if it checkpoints)
            if j["proc"] is not None and j["proc"].poll() is None:
                j["proc"].send_signal(signal.SIGTERM)
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            while len(running) < args.jobs and stop["signal"] is None and errors_in_a_row < MAX_ERRORS_IN_A_ROW:
                trials = []
                while len(trials) < args.pack:  # --pack: a generation, asked together
                    trial = claim(study, args, space)
                    if trial is None:
                        break
                    trials.append(trial)
                if not trials:
                    break
                running.append(launch(trials[0], args, stop) if args.pack == 1 else launch_pack(trials, args, stop))
            if not running:
                break
            time.sleep(0.1)
            for j in [j for j in running if (pack_returncode(j) if "trials" in j else returncode(j)) is not None]:
                running.remove(j)
                for m in pack_members(j) if "trials" in j else [j]:
                    status, value = record(study, m, stop["signal"] is not None)
                    errors_in_a_row = errors_in_a_row + 1 if status == "error" else 0
                    if status != "stopped":
                        progress(study, m, status, value, args, sampler, len(running))
                        write_outputs(study, args, space, plot=False)
    finally:  # an error, a signal or the end: no child outlives the search, none left RUNNING
        stop_children([j for j in running if j["proc"] is not None])
        for j in [m for j in running for m in (pack_members(j) if "trials" in j else [j])]:
            try:
                record(study, j, True)
            except OSError:  # the storage cannot be written (a full disk): the trial stays RUNNING, and
                pass  # the next start queues it again (reap_lost); the error that stopped us is the one line
            except Exception as e:  # noqa: BLE001  the storage itself failed: nothing more to do
                print(f"could not record trial {j['trial'].number}: {e}", file=sys.stderr)
        for s, h in old.items():
            signal.signal(s, h)
    write_outputs(study, args, space, plot=True)
    summary(study, args)
    if stop["signal"] is not None:
        print("search stopped; run the same command again to continue it", flush=True)
        return EXIT_STOPPED
    if errors_in_a_row >= MAX_ERRORS_IN_A_ROW:
        print(f"{errors_in_a_row} trials in a row failed with an error (not a divergence); not starting more "
              "(see their train.log; fix the cause, then re-run)", file=sys.stderr, flush=True)
        return 1
    return 0


# --- outputs ---

def summary(study, args):
    done = evaluated(study.get_trials(deepcopy=False))
    complete = [t for t in done if t.state == TrialState.COMPLETE]
    if not complete:
        print(f"{len(done)} trials evaluated, none completed: no searched_modules.py (see {args.out_root}/trials.md)")
        return
    best = min(complete, key=lambda t: (t.value, t.number))
    start = next((t for t in complete if t.user_attrs.get("start_point")), None)
    print(f"best of {len(done)}: trial {best.number}, val_loss {best.value:.4f}"
          + (f" (start point {start.value:.4f})" if start else "")
          + f" -> {os.path.join(args.out_root, 'searched_modules.py')}, trials.md, progress.png", flush=True)


def fmt_mult(x):
    return f"{2.0 ** x:.3g}"


def write_outputs(study, args, space, plot):
    trials = sorted(evaluated(study.get_trials(deepcopy=False)), key=lambda t: t.number)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = min(complete, key=lambda t: (t.value, t.number)) if complete else None
    start = next((t for t in complete if t.user_attrs.get("start_point")), None)
    if best:
        write_config(args, best, start, len(trials))
    write_table(args, trials, best, start, space)
    if plot and trials:
        write_plot(args, trials)


def write_config(args, best, start, n):
    c = args.config
    steps = math.ceil(c["max_tokens"] / (c["global_batch_size"] * c["block_size"])) if c["max_tokens"] > 0 \
        else c["max_iters"]
    rel = os.path.relpath(args.out_root, REPO) if args.out_root.startswith(REPO) else args.out_root
    lines = ["# Per-module hyperparameters found by scripts/search.py (arXiv 2512.22382's per-module search).",
             f"# Search {args.name!r} in {rel}: best of {n} trials is trial {best.number}, val_loss {best.value:.6g}"
             + (f" (start point, trial {start.number}: {start.value:.6g})." if start else "."),
             f"# Proxy: {' '.join(os.path.relpath(p, REPO) if p.startswith(REPO) else p for p in args.configs)}"
             f" ({c['n_layer']} x {c['n_embd']}, {c['parameterization']}).",
             f"# Transfer: python scripts/transfer.py --from_search {shlex.quote(rel)} --target config/<target>.py "
             "--out target.py, then python train.py target.py",
             "# Every value is a base value at the proxy's base shape (and, for completedp, its batch and",
             "# duration), so the settings below name that base; the target sets its own n_layer, n_embd,",
             "# n_head, batch size and run length.",
             f"parameterization = {c['parameterization']!r}",
             f"tie_embeddings = {c['tie_embeddings']!r}",
             f"base_n_layer = {c['base_n_layer']!r}",
             f"base_n_embd = {c['base_n_embd']!r}"]
    if c["depth_alpha"] is not None:
        lines.append(f"depth_alpha = {c['depth_alpha']!r}")
    if c["parameterization"] == "completedp":
        lines.append(f"base_batch_size = {c['base_batch_size'] or c['global_batch_size']!r}")
        lines.append(f"base_tokens = {c['base_tokens'] or steps * c['global_batch_size'] * c['block_size']!r}")
    lines.append(f"learning_rate = {args.lr0!r}")
    lines.append(f"init_std = {args.std0 if args.std0 is not None else c['init_std']!r}")
    for k in ("weight_decay", "beta1", "beta2", "eps", "input_mult", "output_mult"):
        lines.append(f"{k} = {c[k]!r}")
    lines.append(f"module_hparams = {module_hparams(best.params)!r}")
    write_atomic(os.path.join(args.out_root, "searched_modules.py"), "\n".join(lines) + "\n")


def write_table(args, trials, best, start, space):
    names = list(space)
    lines = [f"# Search {args.name!r}: {len(trials)} trials evaluated of {args.trials}", "",
             f"Proxy: `{' '.join(os.path.relpath(p, REPO) if p.startswith(REPO) else p for p in args.configs)}`; "
             f"start point learning_rate {args.lr0:g}"
             + (f", init_std {args.std0:g}" if args.std0 is not None else "")
             + f"; sampler {args.sampler}; seed {args.seed}"
             + (f"; each trial the mean over train.py seeds {', '.join(map(str, args.seeds))}" if args.seeds else "")
             + ". Multipliers are 2^x of the searched log2 values.", ""]
    if best:
        lines.append(f"Best: trial {best.number}, val_loss {best.value:.4f}"
                     + (f" (start point {start.value:.4f}, {best.value - start.value:+.4f})" if start else "") + ".")
        lines.append("")
    per_seed = bool(args.seeds)
    lines.append("| trial | status | val_loss | " + ("per seed | " if per_seed else "") + "best so far | "
                 + " | ".join(names) + " | wall_s |")
    lines.append("|---" * (len(names) + 5 + per_seed) + "|")
    so_far = math.inf
    for t in trials:
        if t.state == TrialState.COMPLETE:
            so_far = min(so_far, t.value)
        val = f"{t.value:.4f}" if t.state == TrialState.COMPLETE else "-"
        mults = " | ".join(fmt_mult(t.params[n]) if n in t.params else "-" for n in names)
        best_text = f"{so_far:.4f}" if math.isfinite(so_far) else "-"
        seeds = (" / ".join(f"{v:.4f}" for v in t.user_attrs.get("seed_losses", [])) or "-") + " | " if per_seed else ""
        lines.append(f"| {t.number} | {t.user_attrs.get('status', t.state.name.lower())} | {val} | {seeds}{best_text} | "
                     f"{mults} | {t.user_attrs.get('wall_s', '-')} |")
    write_atomic(os.path.join(args.out_root, "trials.md"), "\n".join(lines) + "\n")


def write_plot(args, trials):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no progress.png (pip install -r requirements.txt)")
        return
    xs = [t.number for t in trials]
    vals = [t.value if t.state == TrialState.COMPLETE else math.nan for t in trials]
    best = np.fmin.accumulate(np.array(vals, dtype=float))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, vals, "o", color="0.6", ms=4, label="trial")
    ax.step(xs, best, where="post", color="C3", label="best so far")
    failed = [t.number for t in trials if t.state != TrialState.COMPLETE]
    if failed:
        top = max([v for v in vals if math.isfinite(v)], default=1.0)
        ax.plot(failed, [top] * len(failed), "x", color="C0", label="failed (diverged/error)")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"final val loss (mean of {len(args.seeds)} seeds)" if args.seeds else "final val loss")
    ax.set_title(f"search {args.name} ({args.sampler})")
    ax.legend()
    fig.tight_layout()
    path = os.path.join(args.out_root, "progress.png")
    tmp = f"{path}.tmp.{os.getpid()}"
    try:  # whole or not at all, as runs.write_atomic writes text
        fig.savefig(tmp, dpi=120, format="png")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)


# --- the command line ---

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("configs", nargs="+", help="the proxy's train.py config file(s)")
    ap.add_argument("--from_sweep", metavar="CSV", help="start from the best done setting of a sweep's results.csv")
    ap.add_argument("--learning_rate", help="start from this base LR (default: the proxy config's)")
    ap.add_argument("--init_std", help="start from this base init std (default: the proxy config's)")
    ap.add_argument("--space", default=DEFAULT_SPACE, help=f"what to search (default {DEFAULT_SPACE})")
    ap.add_argument("--bound", type=float, default=3.0, help="log2-multipliers stay in [-bound, bound] (default 3)")
    ap.add_argument("--sampler", default="trust_region", help="trust_region (default), cmaes or random")
    ap.add_argument("--radius", type=float, default=1.0, help="initial trust-region radius in log2 units "
                    "(cmaes: sigma0; default 1, a factor 2)")
    ap.add_argument("--patience", type=int, default=4, help="misses in a row before the radius shrinks (default 4)")
    ap.add_argument("--shrink", type=float, default=0.5, help="radius factor after --patience misses (default 0.5)")
    ap.add_argument("--expand", type=float, default=1.0, help="radius factor on an improvement (default 1)")
    ap.add_argument("--min_radius", type=float, default=1 / 16, help="the radius never shrinks below (default 1/16)")
    ap.add_argument("--distribution", default="uniform", help="uniform (default) or gaussian (std radius/2)")
    ap.add_argument("--trials", type=int, default=20, help="evaluated trials in the storage (default 20)")
    ap.add_argument("--seed", type=int, default=0, help="the sampler's seed (train.py's seed: --seeds)")
    ap.add_argument("--seeds", help="comma list of train.py seeds: a trial runs once per seed, one after another, "
                    "and its value is the mean final val_loss (default: --from_sweep's point's seeds, else one run at "
                    "the proxy config's seed)")
    ap.add_argument("--jobs", type=int, default=1, help="trials at a time in this process")
    ap.add_argument("--pack", type=int, default=1, metavar="K", help="trials asked together and trained as packs "
                    "of one process (pack.py; runs whose settings differ only in values share one); default 1")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads for all jobs together")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a train.py setting for every trial")
    ap.add_argument("--name", help="the study's name (default: the first config's stem)")
    ap.add_argument("--out_root", help="default runs/search/<name>")
    ap.add_argument("--storage", help="default <out_root>/journal.log; a path (journal file) or sqlite:///FILE.db")
    ap.add_argument("--dry_run", action="store_true", help="print the plan and the first points; run nothing")
    ap.add_argument("--show", type=int, default=5, help="--dry_run: points to show (default 5)")
    return ap.parse_args(argv)


def check_args(args):
    if optuna is None:
        raise UserError("scripts/search.py needs optuna (pip install -r requirements.txt)")
    for k in ("trials", "jobs", "pack", "threads", "patience", "show"):
        if getattr(args, k) < 1:
            raise UserError(f"--{k}={getattr(args, k)} must be at least 1")
    for k in ("bound", "radius", "min_radius"):
        v = getattr(args, k)
        if not (math.isfinite(v) and v > 0):
            raise UserError(f"--{k}={v} must be a positive number (log2 units)")
    if args.min_radius > args.radius:
        raise UserError(f"--min_radius={args.min_radius} is larger than --radius={args.radius}")
    if not 0 < args.shrink < 1:
        raise UserError(f"--shrink={args.shrink} must be in (0, 1)")
    if not (math.isfinite(args.expand) and args.expand >= 1):
        raise UserError(f"--expand={args.expand} must be at least 1 (1: the radius never grows)")
    if args.sampler not in SAMPLERS:
        hint = difflib.get_close_matches(args.sampler, SAMPLERS, n=1)
        raise UserError(f"--sampler {args.sampler!r} is not one of {', '.join(SAMPLERS)}"
                        + (f"; did you mean {hint[0]!r}?" if hint else ""))
    if args.distribution not in ("uniform", "gaussian"):
        raise UserError(f"--distribution {args.distribution!r} is not 'uniform' or 'gaussian'")
    if args.from_sweep and (args.learning_rate or args.init_std):
        raise UserError("--from_sweep and --learning_rate/--init_std both give the start point; give one")
    for c in args.configs:
        if c.startswith("-"):
            raise UserError(f"{c!r} is not a config file; options go after --, e.g. --trials 20")


def seed_list(text, set_values):
    """--seeds as a list of distinct ints, or None."""
    if text is None:
        return None
    try:
        seeds = [int(x) for x in text.split(",")]
    except ValueError:
        seeds = None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text!r} must be distinct integers separated by commas, e.g. --seeds 0,1")
    if "seed" in set_values:
        raise UserError("--set seed=... and --seeds both give train.py's seed; give one")
    return seeds


def positive(name, text):
    v = number(text)  # a decimal, 2**-7, 2^-7 or arithmetic of them
    if not math.isfinite(v) or v <= 0:
        raise UserError(f"--{name}={text} must be a positive number (e.g. 2**-7 or 0.0078)")
    return v


def setup(args):
    """Resolve everything a search needs from the arguments; UserError on a mistake."""
    check_args(args)
    defaults, annotations = train_defaults()
    for c in args.configs:
        if not os.path.isfile(c):
            raise UserError(f"proxy config {c} " + ("is a directory, not a file" if os.path.isdir(c)
                                                     else "does not exist") + "; give a train.py config file")
    args.configs = [os.path.abspath(c) for c in args.configs]
    args.set_values, args.set_items = {}, []
    for s in args.set:
        key, eq, text = s.partition("=")
        if not eq:
            raise UserError(f"--set {s!r} has no value; write --set KEY=VALUE")
        if key in SEARCH_SETS:
            raise UserError(f"--set {key}=... is set by the search itself; use --learning_rate/--init_std/--space")
        args.set_values[key] = parse(defaults, [f"--{key}={text}"], annotations)[0][key]
        args.set_items.append(f"{key}={args.set_values[key]!r}")
    config, _ = parse(defaults, args.configs + [f"--{k}={v!r}" for k, v in args.set_values.items()], annotations)
    if config["module_hparams"]:
        raise UserError("the proxy config sets module_hparams; the search sets them per trial (it starts from "
                        "every multiplier 1): remove them from the proxy")
    args.config = config
    args.sweep_seeds = None
    if args.from_sweep:
        args.lr0, args.std0, args.sweep_seeds, args.start_note = from_sweep(args.from_sweep, config, args.configs)
    else:
        args.lr0 = positive("learning_rate", args.learning_rate) if args.learning_rate else config["learning_rate"]
        args.std0 = positive("init_std", args.init_std) if args.init_std else None
        args.start_note = "--learning_rate" if args.learning_rate else "the proxy config's learning_rate"
    args.name = args.name or os.path.splitext(os.path.basename(args.configs[0]))[0]
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", args.name):
        raise UserError(f"--name {args.name!r} must be letters, digits and _.+- only (it names a directory)")
    args.out_root = os.path.abspath(args.out_root) if args.out_root else os.path.join(REPO, "runs", "search", args.name)
    for what, value in [("--out_root", args.out_root)] + [("proxy config", c) for c in args.configs]:
        if CONTROL.search(value):  # it is written into searched_modules.py, a config file train.py runs
            raise UserError(f"{what} {value!r} holds a control character (a newline?), which would start a line of "
                            "code in searched_modules.py; give a path on one line")
    if os.path.isfile(args.out_root):
        raise UserError(f"--out_root {args.out_root} is a file; give a directory")
    if args.storage and "://" not in args.storage:
        args.storage = os.path.abspath(args.storage)
    args.threads_per_job = max(1, args.threads // args.jobs)
    args.seeds = seed_list(args.seeds, args.set_values)
    if args.sweep_seeds and args.seeds is None and "seed" not in args.set_values:
        args.seeds = args.sweep_seeds  # trial 0 reruns the sweep's point: its value is the sweep's
        args.start_note += "; every trial runs those seeds"
    elif args.sweep_seeds and (args.seeds or [args.set_values.get("seed")]) != args.sweep_seeds:
        args.start_note += (f"; trials run seed(s) {', '.join(map(str, args.seeds or [args.set_values['seed']]))}, "
                            "not the sweep's: trial 0's value is not the sweep's")
    if args.space == DEFAULT_SPACE and config["weight_decay"] == 0:  # its wd items would do nothing
        args.space = ",".join(i for i in DEFAULT_SPACE.split(",") if i != "wd")
    space = build_space(args.space, config, args.bound)
    # the trial command must parse: a mistake in --set or the configs stops here, not in every trial
    parse(defaults, args.configs + [f"--{k}={v!r}" for k, v in args.set_values.items()]
          + [f"--learning_rate={args.lr0!r}"] + ([f"--init_std={args.std0!r}"] if args.std0 else [])
          + [f"--module_hparams={module_hparams({n: 0.0 for n in space})!r}"], annotations)
    return space


def plan(args, space, sampler, existing):
    rel = lambda p: os.path.relpath(p, REPO) if p.startswith(REPO) else p  # noqa: E731
    c = args.config
    print(f"search {args.name!r}: proxy {' '.join(map(rel, args.configs))} ({c['n_layer']} x {c['n_embd']}, "
          f"{c['parameterization']}{', untied' if not c['tie_embeddings'] else ''})")
    print(f"start: learning_rate {args.lr0:g}" + (f", init_std {args.std0:g}" if args.std0 is not None else "")
          + f" ({args.start_note})")
    print(f"space: {len(space)} log2-multipliers in [-{args.bound:g}, {args.bound:g}]: {', '.join(space)}")
    if args.sampler == "trust_region":
        print(f"sampler: trust_region ({args.distribution}, radius {args.radius:g}, x{args.shrink:g} after "
              f"{args.patience} misses, x{args.expand:g} on an improvement, min {args.min_radius:g}; seed {args.seed})")
    else:
        print(f"sampler: {args.sampler} (seed {args.seed}{f', sigma0 {args.radius:g}' if args.sampler == 'cmaes' else ''})")
    if args.seeds:
        print(f"each trial: {len(args.seeds)} runs (seeds {', '.join(map(str, args.seeds))}), one after another; "
              "its value is their mean final val_loss")
    print(f"budget: {args.trials} trials, {args.jobs} at a time x {args.threads_per_job} threads; storage "
          f"{rel(args.storage or os.path.join(args.out_root, 'journal.log'))} ({len(evaluated(existing))} evaluated there)")


def dry_run(args, space, sampler):
    existing = []
    if storage_exists(args):
        try:
            stored = optuna.load_study(study_name=args.name, storage=make_storage(args))
        except KeyError:  # the storage holds other studies only
            stored = None
        if stored is not None:
            check_identity(stored, args, space)  # what would stop the search stops its dry run
            existing = stored.get_trials()
    plan(args, space, sampler, existing)
    mem = optuna.create_study(sampler=sampler, direction="minimize")
    for t in existing:
        if t.state in (TrialState.COMPLETE, TrialState.FAIL):
            mem.add_trial(t)
        elif t.state == TrialState.WAITING:  # queued: the next claims take these first
            mem.enqueue_trial(t.params)
    if not existing:
        mem.enqueue_trial({n: 0.0 for n in space})
    print(f"next {args.show} points (multipliers 2^x; as if none of them had finished yet):")
    for _ in range(args.show):
        t = mem.ask(distributions(space))
        print(f"  trial {t.number}: " + " ".join(f"{n}={fmt_mult(t.params[n])}" for n in space))
    t = mem.ask(distributions(space))
    seed, run_dir = run_dirs(os.path.join(args.out_root, "trials", f"t{t.number:04d}"), args.seeds)[0]
    cmd = train_command(args, t.params, run_dir, seed)
    print(("a trial's first command: python " if args.seeds else "a trial's command: python ") + shlex.join(cmd[1:]))
    return 0


def main(argv=None):
    args = parse_args(argv)
    space = setup(args)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = make_sampler(args, space)
    try:
        if args.dry_run:
            return dry_run(args, space, sampler)
        os.makedirs(args.out_root, exist_ok=True)
        with FileLock(os.path.join(args.out_root, "search.lock")):
            study = open_study(args, space, sampler)
            reap_lost(study)
        plan(args, space, sampler, study.get_trials(deepcopy=False))
        return run(study, args, space, sampler)
    except OSError as e:  # a full disk, a read-only out_root: the storage keeps what was told
        raise UserError(f"cannot write to {e.filename or args.out_root} ({e.strerror or e}); free space or make it "
                        "writable, then run the same command again: the search continues from its storage") from None


if __name__ == "__main__":
    run_cli(main)
