"""Bad input, each kind: a config file, an override, a data directory, a checkpoint or a
sample.py argument that cannot work must stop with ONE line starting 'error:' that says what
to change, exit code 2, and no traceback.

Most cases call the code in-process (configurator, train.check_config, GPTConfig,
dataloader.open_dataset, checkpoint.load_checkpoint, train.main / sample.main with a patched
argv) and check the UserError's message; a few run the scripts end to end. The catalogue
docs/errors.md lists every case here with its whole message; each case compares the message it
gets with its row there (paths relative to the test's directory), and every row of the sections
these cases own names a case, so the catalogue and the messages cannot drift apart.
"""
import json
import os
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import checkpoint  # noqa: E402
import sample  # noqa: E402
import train  # noqa: E402
from configurator import configure  # noqa: E402
from runs import UserError  # noqa: E402
from conftest import ENV, TINY as CONF_TINY, run_main  # noqa: E402
from dataloader import HEADER_INTS, RandomWindowLoader, read_tokens, write_tokens, open_dataset  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402

TINY = CONF_TINY + ["--max_iters=4", "--compile=False"]
TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(200))
CHARS = sorted(set(TEXT))


def make_dataset(d):
    ids = np.array([CHARS.index(c) for c in TEXT], dtype=np.uint16)
    os.makedirs(d, exist_ok=True)
    write_tokens(os.path.join(d, "train.bin"), ids[:-1000], vocab_size=len(CHARS))
    write_tokens(os.path.join(d, "val.bin"), ids[-1000:], vocab_size=len(CHARS))
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"tokenizer": "char", "vocab_size": len(CHARS), "itos": CHARS}, f)
    return d


def assert_one_line(msg, *expect):
    assert msg and "\n" not in msg and "Traceback" not in msg, msg
    for e in expect:
        assert e in msg, f"{e!r} not in {msg!r}"


CATALOGUE = os.path.join(REPO, "docs", "errors.md")
ELSEWHERE = {  # catalogue rows whose message another test checks: case -> that test
    "sweep: --pack with --slurm": "tests/test_pack_records.py::test_pack_refusals_are_one_line",
    "pack: a member with wandb on": "tests/test_pack_records.py::test_pack_refusals_are_one_line",
    "pack: a file that is not a pack file": "tests/test_pack_records.py::test_pack_refusals_are_one_line",
    "sweep: a newline in the sweep file's path": 'tests/test_sweep_faults.py::test_a_newline_in_the_sweep_file_path_reaches_no_script',
    'sweep: an out_root the #SBATCH line cannot carry': 'tests/test_sweep_faults.py::test_a_newline_in_the_sweep_file_path_reaches_no_script',
    'sweep: a full disk appending a results row': 'tests/test_sweep_faults.py::test_a_torn_results_row_and_a_full_disk_lose_nothing',
    'search: a torn record inside the journal': 'tests/test_search.py::test_a_torn_line_inside_the_journal_is_one_line',
    'plot_transfer.py: a point repeated with another loss': 'tests/test_hostile_tools.py::test_plot_refuses_a_point_repeated_with_another_loss_and_keeps_an_exact_copy_once',
    'plot_transfer.py: a done row whose loss is not a number': 'tests/test_hostile_tools.py::test_plot_refuses_a_done_row_without_a_finite_loss',
    'plot_transfer.py: a binary results file': 'tests/test_hostile_tools.py::test_unreadable_results_are_one_line_in_every_tool',
    'plot_transfer.py: a results file that is a FIFO': 'tests/test_hostile_tools.py::test_a_fifo_is_refused_before_it_is_opened',
    'shapes.py: a CSV of other columns': 'tests/test_hostile_tools.py::test_unreadable_results_are_one_line_in_every_tool',
    'compare_runs.py: a binary results file': 'tests/test_hostile_tools.py::test_the_command_line_prints_one_error_line_and_exits_2',
    'coord_check.py: a zero width': 'tests/test_hostile_tools.py::test_coord_check_numbers',
    'coord_check.py: a NaN learning rate': 'tests/test_hostile_tools.py::test_coord_check_numbers',
    'coord_check.py: a header-only data file': 'tests/test_hostile_tools.py::test_coord_check_and_laziness_refuse_data_too_short_for_a_window',
    'laziness.py: a negative toy width': 'tests/test_hostile_tools.py::test_laziness_numbers',
    'laziness.py: a NaN learning rate': 'tests/test_hostile_tools.py::test_laziness_numbers',
    'bench.py: a zero width': 'tests/test_hostile_tools.py::test_bench_numbers',
    'bench.py: a seed out of range': 'tests/test_hostile_tools.py::test_bench_numbers',
    'shapes.py: a NaN tokens-per-parameter': 'tests/test_hostile_tools.py::test_shapes_run_numbers',
    'batch/duration setting without completedp': 'tests/test_completedp.py::test_bad_input_is_one_config_error',
    'bench.py: unknown device': 'tests/test_bench.py::test_bench_bad_device_is_one_line',
    'beta multiplier pushing beta below 0': 'tests/test_completedp.py::test_bad_input_is_one_config_error',
    'betas pushed outside [0, 1) by m_B/m_D': 'tests/test_completedp.py::test_bad_input_is_one_config_error',
    'checkpoint: DCP directory without state.json': 'tests/test_fsdp.py::test_bad_dcp_checkpoints_are_one_line_errors',
    'checkpoint: DCP index that would run code': 'tests/test_fsdp.py::test_bad_dcp_checkpoints_are_one_line_errors',
    'checkpoint: data position outside the shards': 'tests/test_data_integrity.py::test_a_checkpoint_data_position_outside_the_shards_is_refused',
    'checkpoint: single file under fsdp': 'tests/test_fsdp.py::test_single_file_checkpoint_refused_under_fsdp',
    'completedp with tied embeddings': 'tests/test_completedp.py::test_bad_input_is_one_config_error',
    'convert: destination exists': 'tests/test_fsdp.py::test_converter_round_trip',
    'data: a file rewritten inside (--verify_data / verify_data.py)': 'tests/test_data_integrity.py::test_a_rewritten_middle_passes_the_start_up_check_but_not_verify_data',
    'data: a shard of another preparation': 'tests/test_faults.py::test_a_replaced_shard_is_refused_when_opened',
    'data: char prepare --input is a FIFO': 'tests/test_data_integrity.py::test_a_fifo_is_refused_at_once',
    'data: empty meta.json': 'tests/test_faults.py::test_char_data_without_meta_is_refused',
    'data: meta.json eot out of range': 'tests/test_data_integrity.py::test_absurd_meta_json_is_one_line',
    'data: meta.json is a FIFO': 'tests/test_data_integrity.py::test_a_fifo_is_refused_at_once',
    'data: meta.json itos not characters': 'tests/test_data_integrity.py::test_absurd_meta_json_is_one_line',
    'data: meta.json nested 100,000 deep': 'tests/test_data_integrity.py::test_absurd_meta_json_is_one_line',
    'data: meta.json sha256 not a digest': 'tests/test_data_integrity.py::test_absurd_meta_json_is_one_line',
    'data: meta.json token count absurd': 'tests/test_data_integrity.py::test_absurd_meta_json_is_one_line',
    'data: meta.json vocab_size beyond a float': 'tests/test_data_integrity.py::test_absurd_meta_json_is_one_line',
    'data: no checksums (prepared before they were recorded)': 'tests/test_data_integrity.py::test_a_dataset_without_checksums_says_how_to_add_them_and_write_records_them',
    'data: no meta.json': 'tests/test_faults.py::test_char_data_without_meta_is_refused',
    'data: same size, other tokens': 'tests/test_faults.py::test_new_train_bin_beside_old_meta_is_refused',
    'data: shard error, no command recorded': 'tests/test_faults.py::test_a_shard_error_names_a_command_that_exists',
    'data: shards without meta.json': 'tests/test_shards.py::test_open_dataset_without_meta_is_refused_until_the_tokenizer_is_named',
    'data: token count differs from meta.json': 'tests/test_faults.py::test_meta_without_fingerprints_still_checks_token_counts',
    'data: token id too large in a later shard': 'tests/test_faults.py::test_a_bad_id_in_a_later_shard_stops_when_the_shard_is_opened',
    'data: train.bin is a FIFO': 'tests/test_data_integrity.py::test_a_fifo_is_refused_at_once',
    'data: train.bin of another preparation': 'tests/test_faults.py::test_new_train_bin_beside_old_meta_is_refused',
    'data: verify_data.py, a listed shard missing': 'tests/test_data_integrity.py::test_shard_corruption_is_found',
    'data: verify_data.py, a shard meta.json does not list': 'tests/test_data_integrity.py::test_shard_corruption_is_found',
    'depth profile of the wrong length': 'tests/test_completedp.py::test_bad_input_is_one_config_error',
    'depth profile on a non-block module': 'tests/test_completedp.py::test_bad_input_is_one_config_error',
    'a modern type on the GPT-2 block': 'tests/test_modern.py::test_the_gpt2_block_refuses_the_modern_types_in_one_line',
    'a type the model lacks': 'tests/test_modern.py::test_the_gpt2_block_refuses_the_modern_types_in_one_line',
    'the depth factor as one number': 'tests/test_modern.py::test_bad_modern_module_hparams_are_one_line',
    'a group and its member both set': 'tests/test_modern.py::test_bad_modern_module_hparams_are_one_line',
    'init std or WD of a norm gain': 'tests/test_completedp.py::test_bad_module_hparams_raise_one_line',
    "completedp at another context than its proxy's":
        'tests/test_modern.py::test_a_completedp_run_at_another_context_than_its_proxy_is_refused',
    'malformed dict': 'tests/test_completedp.py::test_bad_input_is_one_config_error',
    'non-positive base batch/horizon': 'tests/test_completedp.py::test_bad_input_is_one_config_error',
    'non-positive multiplier': 'tests/test_completedp.py::test_bad_input_is_one_config_error',
    'not a dict': 'tests/test_completedp.py::test_bad_input_is_one_config_error',
    'resume with other batch/duration settings': 'tests/test_completedp.py::test_cli_completedp_with_module_hparams_trains_and_resume_checks',
    'run dir: DCP checkpoint with a bytes entry': 'tests/test_fsdp.py::test_a_dcp_bytes_entry_is_refused_never_unpickled',
    'run dir: allocation refused past the estimate': 'tests/test_hostile_run.py::test_an_allocation_the_estimate_let_through_is_one_line',
    'run dir: checkpoint field out of range': 'tests/test_hostile_run.py::test_checkpoint_fields_out_of_range_are_refused',
    'run dir: disk full appending a metrics row': 'tests/test_hostile_run.py::test_full_disk_in_a_metrics_append_is_one_line',
    'run dir: disk full during a checkpoint write': 'tests/test_faults.py::test_a_full_disk_during_a_checkpoint_write_leaves_no_temporary',
    'run dir: disk full inside torch.save': 'tests/test_hostile_run.py::test_full_disk_in_a_checkpoint_write_is_one_line_and_leaves_nothing',
    'run dir: disk full writing the records on a resume': 'tests/test_hostile_run.py::test_full_disk_on_resume_leaves_config_json_whole',
    'run dir: out_dir in use': 'tests/test_faults.py::test_a_second_trainer_is_refused_while_the_first_lives_then_takes_over',
    'run dir: read-only out_dir (train, resume, eval_only)': 'tests/test_faults.py::test_a_read_only_out_dir_is_one_line_for_train_resume_and_eval',
    'run dir: resume on another dataset of the same vocab size': 'tests/test_hostile_run.py::test_a_resume_on_another_vocabulary_of_the_same_size_is_refused',
    'run dir: resume with another seed': 'tests/test_hostile_run.py::test_a_resume_with_changed_trajectory_settings_is_refused',
    'run: gradient norm not finite': 'tests/test_resume.py::test_nan_exits_3_and_leaves_checkpoints_untouched',
    'sample.py: no tokenizer anywhere': 'tests/test_bad_input.py::test_sample_never_guesses_a_tokenizer',
    'sample.py: prompt file is a FIFO': 'tests/test_data_integrity.py::test_a_fifo_is_refused_at_once',
    'search: --set of a searched setting': 'tests/test_search.py::test_bad_arguments_are_one_line_errors',
    "search: a norm gain's init std": 'tests/test_search.py::test_bad_arguments_are_one_line_errors',
    'search: a type the proxy lacks': 'tests/test_search.py::test_bad_arguments_are_one_line_errors',
    'search: depth without a hyperparameter': 'tests/test_search.py::test_bad_arguments_are_one_line_errors',
    'search: a budget of 0': 'tests/test_search.py::test_bad_arguments_are_one_line_errors',
    'search: a multiplier named twice': 'tests/test_search.py::test_bad_arguments_are_one_line_errors',
    'search: a non-positive start LR': 'tests/test_search.py::test_bad_arguments_are_one_line_errors',
    "search: a sweep without the proxy's shape": 'tests/test_search.py::test_bad_arguments_are_one_line_errors',
    'search: a trust region below its floor': 'tests/test_search.py::test_bad_arguments_are_one_line_errors',
    'search: an unembedding of a tied proxy': 'tests/test_search.py::test_bad_arguments_are_one_line_errors',
    'search: another command on a storage': 'tests/test_search.py::test_bad_argument_exit_code_and_a_changed_command_on_a_storage',
    'search: no proxy config': 'tests/test_search.py::test_bad_argument_exit_code_and_a_changed_command_on_a_storage',
    'search: no sweep results': 'tests/test_search.py::test_bad_arguments_are_one_line_errors',
    'search: two start points': 'tests/test_search.py::test_bad_arguments_are_one_line_errors',
    'search: unknown item in the space': 'tests/test_search.py::test_bad_arguments_are_one_line_errors',
    'search: unknown module type': 'tests/test_search.py::test_bad_arguments_are_one_line_errors',
    'search: unknown sampler': 'tests/test_search.py::test_bad_arguments_are_one_line_errors',
    'setting: a zero muP multiplier': 'tests/test_hostile_run.py::test_bad_numbers_are_one_line_and_quick',
    'setting: an integer beyond a float': 'tests/test_hostile_run.py::test_bad_numbers_are_one_line_and_quick',
    'setting: arithmetic without bound': 'tests/test_hostile_run.py::test_bad_numbers_are_one_line_and_quick',
    'setting: fsdp without torchrun': 'tests/test_fsdp.py::test_bad_parallel_settings',
    'setting: seed out of range': 'tests/test_hostile_run.py::test_bad_numbers_are_one_line_and_quick',
    'setting: unknown parallel': 'tests/test_fsdp.py::test_bad_parallel_settings',
    'sweep: a name that is not a plain word': 'tests/test_sweep.py::test_no_shell_line_can_be_injected_into_the_sbatch_script',
    'sweep: newline in --sbatch': 'tests/test_sweep.py::test_no_shell_line_can_be_injected_into_the_sbatch_script',
    'sweep: results file is a directory': 'tests/test_sweep.py::test_an_unreadable_results_file_is_one_line',
    'sweep: results file not UTF-8': 'tests/test_sweep.py::test_an_unreadable_results_file_is_one_line',
    'sweep: results file of other columns': 'tests/test_sweep.py::test_a_mismatched_results_file_stops_before_any_point',
    'sweep: sweep file is a directory': 'tests/test_sweep.py::test_a_sweep_file_that_is_a_directory',
    'unembedding multiplier when tied': 'tests/test_completedp.py::test_bad_input_is_one_config_error',
    'unknown hyperparameter': 'tests/test_completedp.py::test_bad_input_is_one_config_error',
    'unknown module type, did-you-mean': 'tests/test_completedp.py::test_bad_input_is_one_config_error',
}
OWNED = {"setting": "SETTINGS", "data": "DATA", "checkpoint": "CHECKPOINT_FILES", "run dir": "TRAIN_MAIN",
         "sample.py": "SAMPLE"}  # catalogue sections whose every row is a case of this file


def catalogue():
    """docs/errors.md's rows: {case: message}, a case being the first column without its ' *'
    (the mark of rows also run end to end)."""
    rows = {}
    with open(CATALOGUE, encoding="utf-8") as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if line.startswith("| ") and len(cells) == 3 and cells[2].startswith("error: "):
                rows[cells[0].removesuffix(" *")] = cells[2].removeprefix("error: ")
    return rows


def catalogued(case, message, tmp):
    """The message equals the catalogue's row for `case`, with paths made relative."""
    for prefix in (f"{tmp}{os.sep}", f"{REPO}{os.sep}"):
        message = message.replace(prefix, "")
    rows = catalogue()
    assert case in rows, f"docs/errors.md has no row {case!r}; add: | {case} | ... | error: {message} |"
    assert rows[case] == message, f"docs/errors.md row {case!r} says\n  {rows[case]}\nthe code says\n  {message}"


def raises_config_error(fn, *expect, case=None, tmp=None):
    with pytest.raises(UserError) as info:
        fn()
    assert_one_line(str(info.value), *expect)
    if case is not None:
        catalogued(case, str(info.value), tmp)
    return str(info.value)


# --- settings: config files, --key=value, contradictions (configure -> check_config -> GPTConfig)

def resolve(argv):
    """What train.main does with argv before touching data: a UserError, or the config."""
    ns = dict(vars(train))  # a copy: the module's defaults stay as they are
    config = configure(ns, argv)
    train.check_config(config, 1)
    fields = GPTConfig.__dataclass_fields__
    try:
        GPTConfig(**{k: v for k, v in config.items() if k in fields}, vocab_size=65)
    except ValueError as e:  # train.main turns this into a UserError with the same text
        raise UserError(str(e)) from None
    return config


FILES = {  # config files the cases below refer to as {NAME}
    "syntax": "n_layer = (\n",
    "raises": "n_layer = 1 // 0\n",
    "exits": "import sys\nsys.exit(3)\n",
    "unknown": "n_layers = 4\n",
    "wrongtype": "n_layer = '4'\n",
    "ok": "n_layer = 3\n",
    "nan": "learning_rate = float('nan')\n",
    "naneps": "eps = float('nan')\n",
}

SETTINGS = [  # (id, argv, words the message must hold)
    ("unknown key, did-you-mean", ["--n_layers=4"], ["unknown config key 'n_layers'", "did you mean 'n_layer'"]),
    ("unknown key, no close match", ["--zzzz=1"], ["unknown config key 'zzzz'", "defaults at the top of train.py"]),
    ("unknown key in a config file", ["{unknown}"], ["unknown config key 'n_layers'", "did you mean 'n_layer'"]),
    ("malformed argument", ["-n_layer=4"], ["malformed", "--key=value"]),
    ("override without a value", ["--n_layer"], ["has no value", "--n_layer=VALUE"]),
    ("wrong type: float for int", ["--n_layer=4.5"], ["n_layer expects int", "got float 4.5"]),
    ("wrong type: word for int", ["--n_layer=four"], ["--n_layer=four is not a valid int", "e.g. --n_layer=4"]),
    ("wrong type: bool", ["--bias=yes"], ["--bias=yes is not a valid bool", "e.g. --bias=True"]),
    ("wrong type: bool for int", ["--n_layer=True"], ["n_layer expects int, got bool"]),
    ("wrong type in a config file", ["{wrongtype}"], ["n_layer expects int, got str '4'", "fix it there"]),
    ("config file missing", ["config/nope.py"], ["config file config/nope.py does not exist"]),
    ("config file is a directory", ["config"], ["config file config is not a file"]),
    ("config file syntax error", ["{syntax}"], ["line 1", "plain Python assignments"]),
    ("config file raises", ["{raises}"], ["failed to run: ZeroDivisionError", "fix it"]),
    ("config file calls exit()", ["{exits}"], ["failed to run: SystemExit: 3"]),
    ("config file not UTF-8", ["{binary}"], ["cannot read config file", "UTF-8"]),
    ("unknown choice", ["--lr_schedule=linear"], ["lr_schedule='linear' is not one of 'cosine', 'wsd', 'constant'"]),
    ("unknown init_from", ["--init_from=resum"], ["init_from='resum' is not one of"]),
    ("unknown device", ["--device=tpu"], ["device='tpu' is not 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"]),
    ("non-positive batch size", ["--batch_size=0"], ["batch_size=0 must be positive"]),
    ("non-positive block size", ["--block_size=-8"], ["block_size=-8 must be positive"]),
    ("no run length", ["--max_iters=0"], ["max_iters and max_tokens are both <= 0"]),
    ("global batch not divisible", ["--batch_size=4", "--global_batch_size=10"],
     ["global_batch_size=10 is not a multiple of batch_size=4"]),
    ("warmup fraction out of range", ["--warmup_frac=1.0"], ["warmup_frac=1.0 must be in [0, 1)"]),
    ("wsd warmup + decay > 1", ["--lr_schedule=wsd", "--warmup_frac=0.5", "--decay_frac=0.6"],
     ["exceed the whole run", "sum to at most 1"]),
    ("zero learning rate", ["--learning_rate=0"], ["learning_rate=0.0 must be positive"]),
    ("negative weight decay", ["--weight_decay=-0.1"], ["weight_decay=-0.1 must be >= 0"]),
    ("beta of 1", ["--beta2=1.0"], ["beta2=1.0 must be below 1"]),
    ("n_embd not divisible by n_head", ["--n_embd=30", "--n_head=4"], ["n_embd=30 is not divisible by n_head=4"]),
    ("zero layers", ["--n_layer=0"], ["n_layer=0 must be a positive integer"]),
    ("dropout of 1", ["--dropout=1.0"], ["dropout=1.0 must be in [0, 1)"]),
    ("zero init std", ["--init_std=0"], ["init_std=0.0 must be positive"]),
    ("depth_alpha with mup", ["--parameterization=mup", "--depth_alpha=0.5"],
     ["depth_alpha=0.5 has no meaning for parameterization='mup'"]),
    ("depth_alpha out of range", ["--depth_alpha=1.5"], ["depth_alpha=1.5 is outside [0.5, 1]"]),
    ("output_mult with sp", ["--parameterization=sp", "--output_mult=2.0"],
     ["leave them at 1.0 for parameterization='sp'"]),
    ("unknown parameterization", ["--parameterization=ntk"], ["unknown parameterization 'ntk'", "completep"]),
    ("non-positive base shape", ["--base_n_embd=0"], ["base_n_embd=0", "must be positive"]),
    ("empty out_dir", ["--out_dir="], ["out_dir is empty", "--out_dir=out"]),
    ("NaN learning rate in a config file", ["{nan}"], ["learning_rate=nan must be a finite number"]),
    ("NaN eps in a config file", ["{naneps}"], ["eps=nan must be a finite number"]),
    ("infinite learning rate", ["--learning_rate=1e999"], ["learning_rate=inf must be a finite number"]),
    ("infinite init std", ["--init_std=1e999"], ["init_std=inf must be a finite number"]),
]


@pytest.mark.parametrize("case,argv,expect", [pytest.param(i, a, e, id=i) for i, a, e in SETTINGS])
def test_bad_settings(case, argv, expect, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    paths = {}
    for name, text in FILES.items():
        paths[name] = str(tmp_path / f"{name}.py")
        with open(paths[name], "w") as f:
            f.write(text)
    paths["binary"] = str(tmp_path / "binary.py")
    with open(paths["binary"], "wb") as f:
        f.write(b"\xff\xfe n_layer = 2\n")
    argv = [a.format(**paths) for a in TINY + argv]
    raises_config_error(lambda: resolve(argv), *expect, case=f"setting: {case}", tmp=tmp_path)


def test_good_settings_pass(tmp_path):
    """The same pipeline accepts what it should (so the cases above fail for their reason)."""
    path = tmp_path / "ok.py"
    path.write_text(FILES["ok"])
    config = resolve(TINY + [str(path), "--depth_alpha=0.75", "--bias=false", "--learning_rate=3e-3"])
    assert config["n_layer"] == 3 and config["depth_alpha"] == 0.75 and config["bias"] is False


# --- data directories (dataloader.open_dataset) -------------------------------------------

def _header(path, index, value):
    header = np.fromfile(path, dtype=np.int32, count=HEADER_INTS)
    header[index] = value
    with open(path, "r+b") as f:
        f.write(header.tobytes())


def _write(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def _meta(d, **change):
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    meta.update(change)
    for k, v in change.items():
        if v is None:
            del meta[k]
    _write(os.path.join(d, "meta.json"), json.dumps(meta))


DATA = [  # (id, how the directory is broken, block_size, words the message must hold)
    ("dataset dir missing", lambda d: os.rename(d, d + ".gone"), 32, ["does not exist", "--data_dir"]),
    ("dataset dir is a file", lambda d: (os.rename(d, d + ".gone"), _write(d, "x")), 32, ["is not a directory"]),
    ("train.bin missing", lambda d: os.remove(f"{d}/train.bin"), 32, ["holds no train.bin", "prepare.py"]),
    ("val.bin missing", lambda d: os.remove(f"{d}/val.bin"), 32, ["val.bin: file not found", "prepare.py"]),
    ("train.bin is a directory", lambda d: (os.remove(f"{d}/train.bin"), os.mkdir(f"{d}/train.bin")), 32,
     ["train.bin: is a directory, not a token file"]),
    ("token file empty (0 bytes)", lambda d: _write(f"{d}/train.bin", b""), 32,
     ["only 0 bytes, shorter than the 1024-byte header"]),
    ("token file bad magic", lambda d: _header(f"{d}/train.bin", 0, 12345), 32,
     ["wrong magic number 12345", "not a token file"]),
    ("token file wrong version", lambda d: _header(f"{d}/val.bin", 1, 9), 32,
     ["unsupported version 9 for magic 20240520 (expected 1)"]),
    ("token file truncated", lambda d: os.truncate(f"{d}/train.bin", os.path.getsize(f"{d}/train.bin") - 7), 32,
     ["truncated or corrupt"]),
    ("token ids >= vocab_size", lambda d: _meta(d, vocab_size=10, itos=CHARS[:10]), 32,
     [">= vocab_size 10 of meta.json"]),
    ("meta.json invalid JSON", lambda d: _write(f"{d}/meta.json", "{'vocab_size': 65"), 32, ["is not valid JSON"]),
    ("meta.json not an object", lambda d: _write(f"{d}/meta.json", "[65]"), 32, ["must be a JSON object", "got list"]),
    ("meta.json vocab_size not an int", lambda d: _meta(d, vocab_size="65"), 32, ["integer vocab_size > 0, got '65'"]),
    ("meta.json char vocabulary without itos", lambda d: _meta(d, itos=None), 32, ["lacks its itos list"]),
    ("meta.json is a directory", lambda d: (os.remove(f"{d}/meta.json"), os.mkdir(f"{d}/meta.json")), 32,
     ["meta.json", "irectory"]),
    ("block_size longer than the data", lambda d: None, 5000, ["too few for block_size=5000", "lower block_size"]),
    ("val.bin with no tokens", lambda d: write_tokens(f"{d}/val.bin", np.zeros(0, np.uint16), 10), 32,
     ["val.bin holds 0 tokens"]),
    ("meta.json token count of the wrong type", lambda d: _meta(d, train_tokens="5"), 32,
     ["meta.json: train_tokens must be int, got '5'"]),
    ("meta.json file entry of the wrong type", lambda d: _meta(d, files={"train.bin": [1, 2]}), 32,
     ["meta.json: files['train.bin'] must be {\"bytes\": int, \"crc32\": int}, got [1, 2]"]),
]

SHARD_LISTS = [  # (id, how meta.json's shard list of a sharded dataset is broken)
    ("shard entry of the wrong type", lambda m: m["shards"][2].update(tokens="5")),
    ("shard entry without a field", lambda m: m["shards"][2].pop("file")),
    ("shard list not a list", lambda m: m.update(shards={"a": 1})),
]


@pytest.mark.parametrize("case,breakit,block_size,expect", [pytest.param(i, b, t, e, id=i) for i, b, t, e in DATA])
def test_bad_data(case, breakit, block_size, expect, tmp_path):
    d = make_dataset(str(tmp_path / "data"))
    breakit(d)
    raises_config_error(lambda: open_dataset(d, block_size, 4, 8), *expect, case=f"data: {case}", tmp=tmp_path)


@pytest.mark.parametrize("case,breakit", [pytest.param(i, b, id=i) for i, b in SHARD_LISTS])
def test_bad_shard_list(case, breakit, tmp_path):
    from test_shards import make_shards
    d = str(tmp_path / "data")
    make_shards(d)
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    breakit(meta)
    _write(os.path.join(d, "meta.json"), json.dumps(meta))
    raises_config_error(lambda: open_dataset(d, 32, 4, 8), "meta.json", case=f"data: {case}", tmp=tmp_path)


def test_good_data_opens(tmp_path):
    d = make_dataset(str(tmp_path / "data"))
    data = open_dataset(d, 32, 4, 8)
    assert data.meta["vocab_size"] == len(CHARS) and len(read_tokens(f"{d}/val.bin")) == 1000


# --- checkpoints (checkpoint.load_checkpoint, and train.main's resume) -------------------------

def tiny_checkpoint(data_dir, **change):
    """A checkpoint train.main would resume from for TINY + --data_dir, built in-process."""
    ns = dict(vars(train))
    config = configure(ns, TINY + [f"--data_dir={data_dir}"])
    fields = GPTConfig.__dataclass_fields__
    cfg = GPTConfig(**{k: v for k, v in config.items() if k in fields}, vocab_size=len(CHARS))
    model = GPT(cfg)
    opt = model.configure_optimizers(0.1, 1e-2, (0.9, 0.95))
    tokens = read_tokens(os.path.join(data_dir, "train.bin"))
    ckpt = checkpoint.build(model.state_dict(), opt.state_dict(), asdict(cfg), config, model.parameterization.table(),
                            iter_num=2, best_val_loss=3.0, last_eval_iter=2,
                            data=RandomWindowLoader(tokens, 32, 4, 8).state_dict(),
                            rng=[checkpoint.rng_state()], meta={})
    ckpt.update(change)
    return ckpt


def _save(obj):
    return lambda p: torch.save(obj, p)


def _truncated(p):
    torch.save({"format": 1, "model": {"w": torch.zeros(1000)}, "model_config": {}}, p)
    os.truncate(p, os.path.getsize(p) // 2)


CHECKPOINT_FILES = [  # (id, how the file at ckpt_0000002.pt is written, words the message must hold)
    ("checkpoint empty (0 bytes)", lambda p: _write(p, b""), ["cannot be read", "delete it"]),
    ("checkpoint truncated", _truncated, ["cannot be read", "delete it to fall back to the previous one"]),
    ("checkpoint is a text file", lambda p: _write(p, "not a checkpoint\n"), ["cannot be read"]),
    ("checkpoint is a directory", os.mkdir, ["cannot be read", "IsADirectoryError"]),
    ("checkpoint holds numpy (weights_only refuses)", _save({"format": 1, "model": np.zeros(3)}),
     ["cannot be read", "Weights only load failed"]),
    ("checkpoint is a bare tensor", _save(torch.zeros(3)), ["is not a checkpoint of this trainer"]),
    ("checkpoint without a format", _save({"model": {}}), ["is not a checkpoint of this trainer (format 1)"]),
    ("checkpoint of another version", _save({"format": 2, "model": {}, "model_config": {}}),
     ["is not a checkpoint of this trainer (format 1)"]),
    ("checkpoint without model_config", _save({"format": 1, "model": {}}), ["is not a checkpoint of this trainer"]),
]


@pytest.mark.parametrize("case,write,expect", [pytest.param(i, w, e, id=i) for i, w, e in CHECKPOINT_FILES])
def test_bad_checkpoint_file(case, write, expect, tmp_path):
    os.makedirs(tmp_path / "out")
    path = str(tmp_path / "out" / "ckpt_0000002.pt")
    write(path)
    raises_config_error(lambda: checkpoint.load_checkpoint(path), path, *expect,
                        case=f"checkpoint: {case.removeprefix('checkpoint ')}", tmp=tmp_path)


def _ckpt(**change):
    def write(out, data):
        os.makedirs(out, exist_ok=True)
        torch.save(tiny_checkpoint(data, **change), os.path.join(out, "ckpt_0000002.pt"))
    return write


def _shapes(out, data):
    ckpt = tiny_checkpoint(data)
    ckpt["model"]["transformer.wpe.weight"] = torch.zeros(7, 32)
    os.makedirs(out)
    torch.save(ckpt, os.path.join(out, "ckpt_0000002.pt"))


TRAIN_MAIN = [  # (id, what out_dir holds, extra argv, words the message must hold)
    ("init_from=resume without a checkpoint", None, ["--init_from=resume"],
     ["init_from='resume' but", "holds no checkpoint", "init_from='scratch'"]),
    ("init_from=scratch over checkpoints", _ckpt(), ["--init_from=scratch"],
     ["already holds checkpoints (ckpt_0000002.pt)", "new out_dir"]),
    ("eval_only without a checkpoint", None, ["--eval_only=True"], ["eval_only=True but", "no checkpoint to evaluate"]),
    ("out_dir is a file", lambda out, data: _write(out, "x"), [], ["is a file, not a directory"]),
    ("resume into a different depth", _ckpt(), ["--n_layer=3"],
     ["cannot resume from", "n_layer=2 there, 3 here", "use the same settings and data, or a new out_dir"]),
    ("resume into another parameterization", _ckpt(), ["--parameterization=mup"],
     ["parameterization='completep' there, 'mup' here"]),
    ("checkpoint tensors of the wrong shape", _shapes, [], ["does not fit this model", "size mismatch"]),
    ("checkpoint without optimizer state", _ckpt(optimizer=None), [],
     ["field 'optimizer' is NoneType, not dict", "delete it"]),
    ("checkpoint field of the wrong type", _ckpt(iter_num="2"), [],
     ["ckpt_0000002.pt: field 'iter_num' is str, not int", "delete it to fall back"]),
    ("checkpoint without RNG states", _ckpt(rng=[{"torch": 1}]), [],
     ["field 'rng' is not a list of RNG states"]),
    ("checkpoint optimizer without param_groups", _ckpt(optimizer={"state": {}}), [],
     ["field 'optimizer' is not an optimizer state"]),
    ("checkpoint renamed to another step", _ckpt(iter_num=5), [],
     ["ckpt_0000002.pt holds step 5, not the step 2 of its name", "rename it to ckpt_0000005.pt"]),
    ("checkpoint data position of another loader", _ckpt(data={"mode": "sequential shards"}), [],
     ["checkpoint data position is for 'sequential shards'", "same dataset"]),
    ("model too deep for this machine", None, ["--n_layer=10000000"],
     ["this run needs", "parameters, about", "GiB with optimizer state and activations, more than the",
      "GiB cpu has", "lower n_layer, n_embd"]),
    ("model too wide for this machine", None, ["--n_embd=200000", "--n_head=2"], ["this run needs", "lower n_layer"]),
    ("a vocabulary of 10^9", lambda out, data: _meta(data, tokenizer="big", vocab_size=10 ** 9, itos=None), [],
     ["this run needs", "or the dataset's vocab_size"]),
    ("sample prompt not in a char vocabulary", lambda out, data: _no_newline(data), ["--sample_tokens=10"],
     ["outside the vocabulary: ['\\n']", "so set --sample_tokens=0"]),
    ("out_dir under a file", lambda out, data: _write(os.path.dirname(out) + "/f", "x"), ["--out_dir={tmp}/f/run"],
     ["cannot write to out_dir", "/f/run (Not a directory)", "choose another --out_dir"]),
    ("device=cuda without CUDA", None, ["--device=cuda"], ["CUDA is not available", "--device=cpu"]),
    ("device=mps without MPS", None, ["--device=mps"], ["MPS is not available", "--device=cpu"]),
]


@pytest.mark.parametrize("case,setup,argv,expect", [pytest.param(i, s, a, e, id=i) for i, s, a, e in TRAIN_MAIN])
def test_bad_run_directory(case, setup, argv, expect, tmp_path):
    if "--device=cuda" in argv and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    if "--device=mps" in argv and torch.backends.mps.is_available():
        pytest.skip("MPS is available here")
    data, out = make_dataset(str(tmp_path / "data")), str(tmp_path / "out")
    if setup:
        setup(out, data)
    argv = [a.format(tmp=str(tmp_path)) for a in argv]
    raises_config_error(lambda: run_main(train, TINY + [f"--data_dir={data}", f"--out_dir={out}", *argv]), *expect,
                        case=f"run dir: {case}", tmp=tmp_path)


def _no_newline(d):
    """A char dataset whose text has no newline (train.py's sample starts from one)."""
    text = TEXT.replace("\n", " ")
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text], dtype=np.uint16)
    write_tokens(os.path.join(d, "train.bin"), ids[:-1000], vocab_size=len(chars))
    write_tokens(os.path.join(d, "val.bin"), ids[-1000:], vocab_size=len(chars))
    _meta(d, vocab_size=len(chars), itos=chars)


# --- sample.py -----------------------------------------------------------------------------

def _sample_ready(tmp_path):
    data, out = make_dataset(str(tmp_path / "data")), str(tmp_path / "out")
    _ckpt()(out, data)
    return out


SAMPLE = [  # (id, argv after --out_dir, words the message must hold)
    ("sample: no checkpoint", None, ["no checkpoint in", "python train.py --out_dir="]),
    ("sample: --checkpoint not a file", ["--checkpoint=nope.pt"], ["--checkpoint=nope.pt is not a file"]),
    ("sample: prompt with unknown characters", ["--start=ZEBRA"],
     ["outside the vocabulary: ['A', 'B', 'E', 'R', 'Z']"]),
    ("sample: prompt file missing", ["--start=FILE:nope.txt"], ["cannot read the prompt file nope.txt"]),
    ("sample: empty prompt", ["--start="], ["the prompt is empty"]),
    ("sample: top_k of 0", ["--top_k=0"], ["top_k=0 must be positive"]),
    ("sample: negative temperature", ["--temperature=-1.0"], ["temperature=-1.0 must be 0 (greedy) or in [0.001, 1000]"]),
    ("sample: temperature that overflows the logits", ["--temperature=1e-30"], ["temperature=1e-30 must be 0"]),
    ("sample: infinite temperature", ["--temperature=1e999"], ["temperature=inf must be 0"]),
    ("sample: unknown device", ["--device=tpu"], ["device='tpu' is not 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"]),
]


@pytest.mark.parametrize("case,argv,expect", [pytest.param(i, a, e, id=i) for i, a, e in SAMPLE])
def test_bad_sample(case, argv, expect, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = _sample_ready(tmp_path) if argv is not None else str(tmp_path / "empty")
    raises_config_error(lambda: run_main(sample, [f"--out_dir={out}", "--max_new_tokens=2", *(argv or [])]),
                        *expect, case=case.replace("sample:", "sample.py:"), tmp=tmp_path)


def test_sample_never_guesses_a_tokenizer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = _sample_ready(tmp_path)  # its checkpoint holds no tokenizer (meta={}): the dataset's is used
    os.remove(tmp_path / "data" / "meta.json")  # and there is none: not GPT-2 by default
    raises_config_error(lambda: run_main(sample, [f"--out_dir={out}", "--max_new_tokens=2"]),
                        "ckpt_0000002.pt holds no tokenizer", "has no meta.json")


def test_good_sample(tmp_path, capsys):
    out = _sample_ready(tmp_path)
    run_main(sample, [f"--out_dir={out}", "--max_new_tokens=5", "--start=the "])
    assert "ckpt_0000002.pt" in capsys.readouterr().out


# --- end to end: exit code 2, one line on stderr, no traceback ------------------------------

def script(args, cwd=REPO):
    return subprocess.run([sys.executable, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)


E2E = [  # (id, args, words the line must hold)
    ("train.py unknown key", ["train.py", "--n_layers=3"], ["did you mean 'n_layer'"]),
    ("train.py config file syntax error", ["train.py", "{syntax}"], ["line 1"]),
    ("train.py n_embd not divisible by n_head", ["train.py", *TINY, "--data_dir={data}", "--n_embd=30", "--n_head=4"],
     ["not divisible by n_head=4"]),
    ("train.py dataset dir missing", ["train.py", *TINY, "--data_dir={tmp}/nope"], ["does not exist"]),
    ("train.py truncated checkpoint", ["train.py", *TINY, "--data_dir={data}", "--out_dir={out}"],
     ["ckpt_0000002.pt cannot be read"]),
    ("sample.py no checkpoint", ["sample.py", "--out_dir={tmp}/nope"], ["no checkpoint in"]),
    ("sample.py prompt with unknown characters", ["sample.py", "--out_dir={good}", "--start=ZEBRA"],
     ["outside the vocabulary"]),
]


@pytest.mark.parametrize("args,expect", [pytest.param(a, e, id=i) for i, a, e in E2E])
def test_end_to_end_one_line_exit_2(args, expect, tmp_path):
    tmp = str(tmp_path)
    paths = dict(tmp=tmp, data=make_dataset(f"{tmp}/data"), out=f"{tmp}/out", good=f"{tmp}/good",
                 syntax=f"{tmp}/syntax.py")
    _write(paths["syntax"], FILES["syntax"])
    os.makedirs(paths["out"])
    _truncated(f"{tmp}/out/ckpt_0000002.pt")
    _ckpt()(paths["good"], paths["data"])
    res = script([a.format(**paths) for a in args])
    assert res.returncode == 2, f"exit {res.returncode}:\n{res.stdout[-1000:]}\n{res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert_one_line(lines[0], *expect)


def test_every_catalogue_row_of_these_sections_is_a_case():
    """The other direction: a row of docs/errors.md in a section this file owns that no case
    here produces is a message nobody checks (rows of other sections name their own tests)."""
    cases = {f"{section}: {i.removeprefix('checkpoint ') if section == 'checkpoint' else i}"
             for section, table in OWNED.items() for i, *_ in globals()[table]}
    cases |= {i.replace("sample:", "sample.py:") for i, *_ in SAMPLE} | {f"data: {i}" for i, _ in SHARD_LISTS}
    unchecked = {c for c in catalogue() if c not in cases and c not in ELSEWHERE}
    assert not unchecked, f"docs/errors.md rows that no test is named for: {sorted(unchecked)}"
    stale = {c for c in ELSEWHERE if c not in catalogue()}
    assert not stale, f"ELSEWHERE names rows docs/errors.md no longer has: {sorted(stale)}"


def test_the_tests_named_for_catalogue_rows_exist():
    """A renamed or deleted test leaves its rows unchecked: each name must be a test function."""
    import ast
    missing = []
    for case, where in ELSEWHERE.items():
        path, _, name = where.partition("::")
        with open(os.path.join(REPO, path), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        if name not in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}:
            missing.append(f"{case}: {where}")
    assert not missing, f"catalogue rows name tests that do not exist: {missing}"


@pytest.mark.parametrize("meta,words", [
    ({"tokenizer": "char", "vocab_size": 3, "itos": 5}, "itos must be list, got 5"),
    ({"tokenizer": "char", "vocab_size": 2, "itos": ["a", "a"]}, "distinct non-empty strings"),
    ({"tokenizer": "char", "vocab_size": 3, "itos": ["a", "b", "c"]}, "the model has"),
])
def test_sample_checks_the_vocabulary_a_checkpoint_carries(meta, words, tmp_path, monkeypatch):
    """A checkpoint may come from anywhere: its tokenizer meta is checked as a meta.json is, and a
    character vocabulary must cover the model's tokens, before it decodes anything."""
    monkeypatch.chdir(tmp_path)
    data, out = make_dataset(str(tmp_path / "data")), tmp_path / "out"
    out.mkdir()
    checkpoint.save(tiny_checkpoint(data, meta=meta), str(out / "ckpt_0000002.pt"))
    with pytest.raises(UserError, match=words) as e:
        run_main(sample, [f"--out_dir={out}", "--max_new_tokens=2"])
    assert "\n" not in str(e.value)
