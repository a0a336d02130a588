"""
What the processes around one run share (standard library only, so scripts/sweep.py can
import it without torch): the exit codes, the lock that makes one process the owner of an
out_dir, and the checks made before a model is allocated.

Exit codes of train.py (and scripts/sweep.py):
    0  done
    2  bad input: one `error: ...` line on stderr, nothing lost
    3  diverged: a non-finite loss or gradient norm; checkpoints untouched
    4  stopped, resumable: SIGTERM/SIGINT (one or several) or halt_at_iter; a checkpoint was
       saved and the same command continues the run
"""
import errno
import fcntl
import json
import os
import re
import socket
import stat
import time

EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_STOPPED = 2, 3, 4


class UserError(Exception):
    """A user's mistake: a config file, an override, a flag, a data directory, a checkpoint, a
    sweep or results file. The one error class of the repository; run_cli prints its message as
    one `error: ...` line and exits EXIT_BAD_INPUT, without a traceback."""


def run_cli(main):
    """Run an entry point's main(): the one catch site of each entry point. A UserError becomes
    one line on stderr and exit code 2, never a traceback; library code raises, only this exits.
    main() returns the exit code (None means 0)."""
    import sys
    try:
        code = main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except BrokenPipeError:  # `... | head` closed the pipe: stop quietly, as a shell tool does
        quiet_stdout()
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def quiet_stdout():
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    import sys
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
LOCK_NAME = "train.lock"
_HELD = []  # the RunLocks of this process

# A regular checkpoint: a file ckpt_<7-digit step>.pt, or under parallel='fsdp' a DCP directory
# ckpt_<7-digit step>.dcp. The one rule for "this run has a checkpoint" (it resumes, so its
# records are kept): train.py, scripts/sweep.py and scripts/search.py all ask has_checkpoint.
CHECKPOINT_NAME = re.compile(r"ckpt_(\d{7})\.(?:pt|dcp)")


def has_checkpoint(out_dir):
    """Whether out_dir holds a regular checkpoint that train.py would resume from."""
    try:
        names = os.listdir(out_dir)
    except OSError:
        return False
    return any(CHECKPOINT_NAME.fullmatch(n) for n in names)


def write_atomic(path, data):
    """Write a file whole or not at all: a temporary file beside it (`<path>.tmp.<pid>`),
    fsynced, renamed over it, the directory fsynced. `data` is text, or a function that writes
    into the open binary file (checkpoint.py: torch.save). On failure the old file is
    untouched, the temporary one removed, and the error raised for the caller to report in one
    line."""
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            data(f) if callable(data) else f.write(data.encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    fsync_dir(os.path.dirname(path))


def fsync_dir(path):
    """Make the renames in a directory durable; a filesystem that cannot fsync a directory
    keeps them anyway."""
    try:
        fd = os.open(path or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def out_of_memory(e):
    """Whether an exception is an allocator's refusal (MemoryError; torch's RuntimeError
    "can't allocate memory" on CPU, OutOfMemoryError "out of memory" on GPU), which the entry
    points report as one line; any other error is left to surface."""
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and (
        "can't allocate memory" in str(e) or "out of memory" in str(e).lower()))


def write_json(path, obj, **kw):
    """write_atomic of obj as JSON."""
    write_atomic(path, json.dumps(obj, **kw))


def append_line(path, line):
    """Append one record line, always starting on a fresh line: if the file's last byte is not a
    newline (a torn append: a kill or a full disk mid-write), a newline is written first so the
    torn piece stays alone on its line, where a reader skips it, instead of being glued to this
    record. The write is flushed and fsynced; an OSError is the caller's to report."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        lead = b""
        if size:
            with open(path, "rb") as f:
                f.seek(size - 1)
                lead = b"" if f.read(1) == b"\n" else b"\n"
        os.write(fd, lead + line.rstrip("\n").encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def regular_file(path, what):
    """Refuse, before anything opens it, a path that exists but is not a regular file (a FIFO,
    a device, a socket: open() would block forever or read without end). Returns path."""
    try:
        st = os.stat(path)
    except OSError:
        return path  # missing or unreadable: the caller's open() reports it
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise UserError(f"{what} {path} is {kind}, not a regular file; point it at a regular file")
    return path


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def lock_owner(out_dir):
    """{host, pid, started} of the live process that owns out_dir, else None."""
    path = os.path.join(out_dir, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_owner(fd) or {"host": "?", "pid": "?"}
        except OSError:  # no flock on this filesystem: the pid is all there is
            owner = _read_owner(fd)
            return owner if owner and (owner.get("host") != socket.gethostname()
                                       or pid_alive(owner.get("pid", -1))) else None
        return None
    finally:
        os.close(fd)


def _read_owner(fd):
    try:
        owner = json.loads(os.pread(fd, 4096, 0).decode() or "null")
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


class RunLock:
    """An advisory lock on out_dir: the file out_dir/train.lock, flock-ed for the owner's
    lifetime and holding {"host", "pid", "started"} for the message. Another trainer on the same
    out_dir is refused in one line while the owner lives; when the owner is gone (killed: the
    kernel drops its flock) the next one takes it over. Released (the file removed) on exit."""

    def __init__(self, out_dir):
        self.path, self.fd = os.path.join(out_dir, LOCK_NAME), None
        try:
            os.makedirs(out_dir, exist_ok=True)
            while self.fd is None:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    owner = _read_owner(fd) or {}
                    os.close(fd)
                    raise UserError(
                        f"{out_dir} is in use by another run (pid {owner.get('pid', '?')} on "
                        f"{owner.get('host', '?')}, since {owner.get('started', '?')}); wait for it to end, "
                        "stop it, or choose another --out_dir") from None
                except OSError as e:  # a filesystem without flock: fall back to the pid in the file
                    if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                        raise
                    owner = _read_owner(fd)
                    if owner and owner.get("pid") != os.getpid() and (
                            owner.get("host") != socket.gethostname() or pid_alive(owner.get("pid", -1))):
                        os.close(fd)
                        raise UserError(f"{out_dir} is in use by another run (pid {owner.get('pid')} on "
                                          f"{owner.get('host')}); if that run is gone, delete {self.path}") from None
                try:  # the file may have been released (removed) between open and flock: retry
                    same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
                self.fd = fd
            me = json.dumps(dict(host=socket.gethostname(), pid=os.getpid(),
                                 started=time.strftime("%Y-%m-%d %H:%M:%S")))
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, me.encode(), 0)
            os.fsync(self.fd)
            _HELD.append(self)
        except OSError as e:  # read-only, full, or not a directory
            raise UserError(f"cannot write to out_dir {out_dir} ({e.strerror or e}); make it writable or "
                              "choose another --out_dir") from None

    def release(self):
        if self.fd is not None:
            try:
                os.remove(self.path)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None


def release_all():
    """Release every lock this process holds (at exit; tests that run train.main in-process)."""
    while _HELD:
        _HELD.pop().release()


def memory_estimate(n_layer, n_embd, n_head, vocab_size, block_size, batch_size, bytes_per_act=4):
    """(bytes, text): a lower bound on training memory: fp32 weights, gradients and AdamW's two
    moments (16 bytes a parameter), and one micro-batch's activations kept for backward."""
    params = 12 * n_layer * n_embd ** 2 + (vocab_size + block_size) * n_embd
    tokens = batch_size * block_size
    acts = tokens * n_layer * (16 * n_embd + 2 * n_head * block_size) + 3 * tokens * vocab_size
    total = 16 * params + bytes_per_act * acts
    return total, f"{params / 1e6:,.0f}M parameters, about {total / 2 ** 30:,.1f} GiB with optimizer state and activations"


def available_memory(device_type, device=None):
    """Bytes this process could use on the device (GPU memory, else the machine's RAM)."""
    if device_type == "cuda":
        import torch
        return torch.cuda.mem_get_info(device)[1]
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def last_line(path):
    """The last non-empty line of a text file (what a failed child said last), or ''."""
    try:
        with open(path, errors="replace") as f:
            return (f.read().strip().splitlines() or [""])[-1]
    except OSError:
        return ""


def log_tail(out_dir):
    """The last line of a run's train.log, or ''."""
    return last_line(os.path.join(out_dir, "train.log"))


# --- a run's records as the processes around it read them (scripts/sweep.py, scripts/search.py) ---

REPO = os.path.dirname(os.path.abspath(__file__))
STOP_GRACE_S = 60  # how long stopped children may take to save a checkpoint before SIGKILL
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a newline in a generated script or config starts a line nothing quotes


def train_defaults():
    """The module-level defaults of train.py and their annotations, as configurator.configure
    sees them, read from its source without importing torch."""
    import ast
    path = os.path.join(REPO, "train.py")
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    defaults, annotations = {}, {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            name, value = node.target.id, node.value
            annotations[name] = eval(ast.unparse(node.annotation), {})  # e.g. float | None
        else:
            continue
        try:
            v = ast.literal_eval(value)
        except ValueError:
            continue
        if not name.startswith("_") and not name.isupper() and isinstance(v, (int, float, bool, str, dict, type(None))):
            defaults[name] = v
    return defaults, annotations


def read_final(out_dir):
    """out_dir's final.json (how the run ended: status, iter, losses), or None."""
    try:
        with open(os.path.join(out_dir, "final.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def final_stamp(out_dir):
    """(inode, mtime, size) of out_dir's final.json, or None. A run's outcome is the final.json
    it wrote, not one an earlier run left (a stop, then a resumed run that crashed): compared
    before and after the run."""
    try:
        st = os.stat(os.path.join(out_dir, "final.json"))
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def final_record(out_dir):
    """'<status> <stamp>' of out_dir's final.json ('none' without one): what scripts/slurm_train.sh
    compares before and after torchrun, which turns a stopped worker's exit 4 into 1."""
    return " ".join(map(str, [(read_final(out_dir) or {}).get("status", "none"), *(final_stamp(out_dir) or ())]))


def git_commit(repo=REPO):
    """`git rev-parse HEAD` of the checkout at `repo`, or 'unknown' outside one (or without git)."""
    import subprocess
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = out.stdout.strip()
    return text if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{7,64}", text) else "unknown"


def run_commit(out_dir):
    """The commit that last ran in out_dir: provenance.json's git_commit of its latest start (a
    resume's, else the first start's), or None where the record has none."""
    try:
        with open(os.path.join(out_dir, "provenance.json")) as f:
            prov = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(prov, dict):
        return None
    starts = [prov] + [r for r in prov.get("resumes", []) if isinstance(r, dict)]
    commits = [s.get("git_commit") for s in starts if isinstance(s.get("git_commit"), str) and s.get("git_commit")]
    return commits[-1] if commits else None


def die_with_parent():
    """In a child (Popen's preexec_fn): SIGTERM when the parent dies, even by SIGKILL (Linux), so
    no train.py outlives the sweep or search that started it."""
    import signal
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stop_children(running, grace=STOP_GRACE_S):
    """SIGTERM every running child of `running` (dicts with a Popen 'proc', its open 'log' and,
    for a sweep, the point's claim 'hold'; train.py saves at its next step), SIGKILL what is left
    after `grace` seconds, and reap them all."""
    import signal
    import subprocess
    for j in running:
        if j["proc"].poll() is None:
            j["proc"].send_signal(signal.SIGTERM)
    deadline = time.time() + grace
    for j in running:
        try:
            j["proc"].wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            j["proc"].kill()
            j["proc"].wait()
        if j.get("log"):
            j["log"].close()
        if j.get("hold"):  # the point's claim outlives its child, never the other way round
            j["hold"].close()
        for h in j.get("holds", ()):  # a pack's claims, one per member
            h.close()


# scripts/slurm_train.sh asks these two whether a run it started stopped (its own record)
def train_out_dir(argv):
    """The out_dir train.py resolves from its arguments (config files, then --key=value), read
    without torch; nanoGPT's alias names (train.py's NANOGPT_ALIASES: none sets out_dir) pass."""
    import ast
    import contextlib
    import io
    from configurator import parse  # here, not at the top: configurator imports this module
    defaults, annotations = train_defaults()
    with open(os.path.join(REPO, "train.py")) as f:
        tree = ast.parse(f.read())
    names = [k.value for node in tree.body if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
             and getattr(node.targets[0], "id", None) == "NANOGPT_ALIASES" for k in node.value.keys]
    with contextlib.redirect_stdout(io.StringIO()):  # parse's notes about the aliases
        return parse(defaults, argv, annotations, dict.fromkeys(names, lambda v, c: ({}, "")))[0]["out_dir"]
