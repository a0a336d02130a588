"""The README's walkthrough, exactly as written, shrunk to tiny sizes: the commands are read from
the README's walkthrough block (so the test fails when the README changes them), run in order
as subprocesses in a scratch folder, each with overrides that make it small (fewer tokens, its
output under the test's directory), and each must exit 0. The last one trains the target from
the file scripts/transfer.py wrote, which must carry the proxy's recipe."""
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import ENV, REPO, write_char_dataset

BLOCK = re.compile(r"<!-- walkthrough -->\n```bash\n(.*?)```", re.S)

# what each step gets on top of the README's command: tiny points, output in the scratch folder
TINY = {
    "scripts/sweep.py": ["--set", "max_tokens=2048", "--set", "eval_tokens=512", "--set", "data_dir={data}",
                         "--set", "log_interval=1"],
    "scripts/plot_transfer.py": [],
    "scripts/search.py": ["--set", "data_dir={data}"],
    "scripts/transfer.py": ["--set", "max_tokens=4096", "--set", "data_dir={data}"],
    "train.py": ["--out_dir={tmp}/out-target", "--sample_tokens=8", "--data_dir={data}"],
}


def walkthrough():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        block = BLOCK.search(f.read())
    assert block, "README.md has no <!-- walkthrough --> block"
    return [shlex.split(line.split("  #")[0]) for line in block.group(1).splitlines() if line.strip()]


def test_the_walkthrough_block_is_five_commands_or_fewer():
    steps = walkthrough()
    assert 3 <= len(steps) <= 5 and all(s[0] == "python" for s in steps), steps
    assert [s[1] for s in steps if s[1] != "scripts/search.py"] == [
        "scripts/sweep.py", "scripts/plot_transfer.py", "scripts/transfer.py", "train.py"]


@pytest.mark.slow
def test_the_walkthrough_runs_as_written(tmp_path):
    """A fresh folder (the repository's files, no runs/), the README's commands in order."""
    work = tmp_path / "repo"
    shutil.copytree(REPO, work, ignore=shutil.ignore_patterns(".git", "runs", "out*", "__pycache__", "*.bin",
                                                                   "meta.json", "experiments", "tests", "docs"))
    shutil.copytree(os.path.join(REPO, "experiments", "walkthrough"), work / "experiments" / "walkthrough")
    data = write_char_dataset(str(tmp_path / "data"))
    fill = dict(tmp=str(tmp_path), data=data)
    for step in walkthrough():
        script = step[1]
        if script == "scripts/search.py":  # optional in the walkthrough; its own tests cover it
            continue
        extra = [a.format(**fill) for a in TINY[script]]
        r = subprocess.run([sys.executable, *step[1:], *extra], cwd=work, env=ENV, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, f"{' '.join(step)} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    target = (work / "runs" / "target.py").read_text()
    for recipe in ("lr_schedule = 'wsd'", "eps = 1e-12", "init_std = 0.125", "base_n_layer = 2"):
        assert recipe in target, f"{recipe!r} not in the transferred config:\n{target}"
    assert os.path.exists(tmp_path / "out-target" / "final.json")
