"""
nanoGPT-style configuration, checked:

    python train.py [config/file.py ...] [--key=value | --key value ...]
    python train.py --help          # every setting, its default and what it is for

Config files are short Python files of plain assignments; `--key=value` overrides follow.
A value is a Python literal or simple arithmetic on numbers (`--learning_rate=2**-7`).
The defaults (the module-level assignments of the calling script) fix the set of keys and
their types; a default of None takes its type from the script's annotation
(`depth_alpha: float | None = None`). A dict setting takes a dict literal, in a file or as
--key='{"a": {"b": 1}}'. Unknown keys, wrong types and malformed arguments
raise UserError with one line that says what to change.
"""
import ast
import difflib
import io
import operator
import os
import tokenize
import types
import typing


from runs import UserError  # the one error class (re-exported for the callers of parse)


def _allowed_types(name, default, annotations):
    if name in annotations:
        ann = annotations[name]
        args = typing.get_args(ann)
        return tuple(a for a in args) if args else (ann,)
    return (type(default),)


def _type_names(types_):
    return " or ".join("None" if t is type(None) else t.__name__ for t in types_)


def check_value(name, value, allowed, source):
    """Return value converted to an allowed type, or raise UserError."""
    if float in allowed and type(value) is int:
        return float(value)  # an int where a float is expected is fine
    if type(value) in allowed:
        return value
    raise UserError(f"{name} expects {_type_names(allowed)}, got {type(value).__name__} "
                      f"{value!r} ({source}); fix it there")


_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
          ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow,
          ast.USub: operator.neg, ast.UAdd: operator.pos}
# Bounds on a setting's text and its arithmetic, so that no override can keep the parser busy
# or exhaust memory (9**9**9**9, (9**999)**999, 20,000 nested operators): a value is at most
# MAX_TEXT characters and MAX_NODES operators, and no integer it computes exceeds 2**MAX_BITS.
MAX_TEXT, MAX_NODES, MAX_BITS = 100_000, 64, 256


class _TooBig(ValueError):
    """A value beyond the bounds above (reported as such, not as a malformed literal)."""


def _bounded(v):
    if type(v) is int and v.bit_length() > MAX_BITS:
        raise _TooBig(f"an integer beyond 2**{MAX_BITS}")
    return v


def _arithmetic(node, budget=None):
    """Evaluate numbers joined by + - * / // ** (e.g. 2**-7, 3e-4*2); anything else is ValueError,
    an expression beyond the bounds _TooBig."""
    budget = [MAX_NODES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig(f"more than {MAX_NODES} operators")
    if isinstance(node, ast.Expression):
        return _arithmetic(node.body, budget)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _bounded(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        left, right = _arithmetic(node.left, budget), _arithmetic(node.right, budget)
        if isinstance(node.op, ast.Pow):
            if abs(right) > 1024:
                raise _TooBig("an exponent beyond 1024")
            if type(left) is int and type(right) is int and right > 0 and left.bit_length() * right > MAX_BITS + right:
                raise _TooBig(f"an integer beyond 2**{MAX_BITS}")  # checked before computing it
        return _bounded(_ARITH[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _ARITH:
        return _ARITH[type(node.op)](_arithmetic(node.operand, budget))
    raise ValueError("not arithmetic")


def _parse_override(name, text, allowed):
    if bool in allowed and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if len(text) > MAX_TEXT:
        raise UserError(f"--{name}= is {len(text):,} characters, more than the {MAX_TEXT:,} a setting may be; "
                          "put a long value in a config file")
    try:
        return _bounded(ast.literal_eval(text))
    except _TooBig as e:
        raise UserError(f"--{name}={text[:40]}{'...' if len(text) > 40 else ''} is beyond what a setting "
                          f"may be ({e}); write a smaller number") from None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return _arithmetic(ast.parse(text, mode="eval"))
    except _TooBig as e:
        raise UserError(f"--{name}={text[:40]}{'...' if len(text) > 40 else ''} is beyond what a setting "
                          f"may be ({e}); write the number itself") from None
    except (ValueError, SyntaxError, ArithmeticError, RecursionError, MemoryError, TypeError):
        if str in allowed:
            return text  # a bare string: --dataset=shakespeare_char
        example = next((e for t, e in ((bool, "True"), (int, "4"), (float, "0.1"), (dict, "'{\"attn_qkv\": {\"lr\": 2}}'"))
                        if t in allowed), "None")
        raise UserError(f"--{name}={text[:60]}{'...' if len(text) > 60 else ''} is not a valid {_type_names(allowed)}; "
                          f"write it as a Python literal, e.g. --{name}={example}") from None


def _unknown(name, keys, source):
    hint = difflib.get_close_matches(name, keys, n=1)
    hint = f"; did you mean {hint[0]!r}?" if hint else "; see the defaults at the top of train.py"
    return UserError(f"unknown config key {name!r} ({source}){hint}")


def read_config_file(path):
    """The assignments of a config file, as a dict."""
    if not os.path.isfile(path):
        what = "is not a file" if os.path.exists(path) else "does not exist"
        raise UserError(f"config file {path} {what}; give a path like config/train_default.py")
    try:
        with open(path) as f:
            source = f.read()
        code = compile(source, path, "exec")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read config file {path} ({e}); save it as UTF-8 text") from None
    except SyntaxError as e:
        where = f" line {e.lineno}" if e.lineno else ""
        raise UserError(f"config file {path}{where}: {e.msg}; it must be plain "
                          "Python assignments like n_layer = 4") from None
    ns = {"__file__": os.path.abspath(path)}  # so a config can find files beside it
    try:
        exec(code, ns)
    except (Exception, SystemExit) as e:  # a config file is code; report its failure in one line
        detail = (str(e).splitlines() or [""])[0]
        raise UserError(f"config file {path} failed to run: {type(e).__name__}: {detail}; fix it "
                          "(config files are plain assignments like n_layer = 4)") from None
    return {k: v for k, v in ns.items()
            if not k.startswith("_") and not isinstance(v, (types.ModuleType, types.FunctionType, type))}


def _pairs(argv):
    """Join `--key value` into `--key=value`; config files and `--key=value` pass through."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and "=" not in arg and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out.append(f"{arg}={argv[i + 1]}")
            i += 2
        else:
            out.append(arg)
            i += 1
    return out


def parse(defaults, argv, annotations=None, aliases=None):
    """Resolve argv (config files, then --key=value) against defaults. Returns (config, sources).
    `aliases` maps another trainer's setting name to a function (value, config) -> (dict of
    settings to set, note); it runs once everything else is parsed and may raise UserError
    to refuse the name with its replacement."""
    annotations = annotations or {}
    aliases = aliases or {}
    config = dict(defaults)
    sources = {k: "default" for k in defaults}
    allowed = {k: _allowed_types(k, v, annotations) for k, v in defaults.items()}
    pending = []  # (alias, value, source), applied after every other setting
    for arg in _pairs(argv):
        if not arg.startswith("--"):
            if arg.startswith("-"):
                raise UserError(f"argument {arg!r} is malformed; overrides are written --key=value")
            for k, v in read_config_file(arg).items():
                if k in aliases and k not in config:
                    pending.append((k, v, f"in {arg}"))
                    continue
                if k not in config:
                    raise _unknown(k, list(config), f"in {arg}")
                config[k] = check_value(k, v, allowed[k], f"in {arg}")
                sources[k] = arg
            continue
        if "=" not in arg:
            raise UserError(f"argument {arg!r} has no value; write {arg}=VALUE")
        key, text = arg[2:].split("=", 1)
        if key in aliases and key not in config:
            pending.append((key, _parse_override(key, text, (int, float, bool, str)), f"from {arg}"))
            continue
        if key not in config:
            raise _unknown(key, list(config), f"from {arg}")
        config[key] = check_value(key, _parse_override(key, text, allowed[key]), allowed[key],
                                  f"from {arg}")
        sources[key] = "command line"
    for name, value, source in pending:
        updates, note = aliases[name](value, config)
        for k, v in updates.items():
            config[k] = check_value(k, v, allowed[k], f"{name}={value!r} {source}")
            sources[k] = f"{name} {source}"
        print(f"note: {name}={value!r} ({source}) is read as {note}")
    return config, sources


def _comments(path):
    """{line number: trailing comment} and the comment-only lines of a Python file."""
    with open(path) as f:
        source = f.read()
    trailing, alone = {}, {}
    code_lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            (alone if tok.start[0] not in code_lines else trailing)[tok.start[0]] = tok.string.lstrip("# ")
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_lines.add(tok.start[0])
    return trailing, alone


def help_text(path, defaults):
    """The settings of the script at `path`, in source order, each with its default and its
    trailing comment, under the script's section comments."""
    with open(path) as f:
        tree = ast.parse(f.read())
    trailing, alone = _comments(path)
    doc = (ast.get_docstring(tree) or "").strip()
    lines = [doc, "", "settings (defaults shown; override with config files and --key=value):"]
    last = 0
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else (
            node.target if isinstance(node, ast.AnnAssign) else None)
        if not isinstance(target, ast.Name) or target.id not in defaults:
            continue
        section = [alone[n] for n in range(last + 1, node.lineno) if n in alone]
        if section:  # a comment line between settings heads a section
            lines.append(f"  # {section[-1]}")
        last = getattr(node, "end_lineno", node.lineno)
        default = f"{target.id} = {defaults[target.id]!r}"
        note = trailing.get(node.lineno, "")
        lines.append(f"  {default:<34} {note}".rstrip())
    return "\n".join(lines)


def configure(namespace, argv, aliases=None):
    """nanoGPT's entry point: resolve argv against the module-level defaults in `namespace`
    (a script's globals()), write the result back into it and return it as a dict.
    `--help` (or -h) prints the settings with their defaults and comments, and exits 0."""
    defaults = {k: v for k, v in namespace.items()  # UPPER_CASE names are constants, not settings
                if not k.startswith("_") and not k.isupper()
                and isinstance(v, (int, float, bool, str, dict, type(None)))}
    if any(a in ("--help", "-h") for a in argv):
        print(help_text(namespace["__file__"], defaults))
        raise SystemExit(0)
    config, _ = parse(defaults, argv, namespace.get("__annotations__", {}), aliases)
    namespace.update(config)
    return config
