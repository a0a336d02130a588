"""
nanoGPT-style configuration, checked:

    python train.py [config/file.py ...] [--key=value ...]

Config files are short Python files of plain assignments; `--key=value` overrides follow.
The defaults (the module-level assignments of the calling script) fix the set of keys and
their types; a default of None takes its type from the script's annotation
(`depth_alpha: float | None = None`). A dict setting takes a dict literal, in a file or as
--key='{"a": {"b": 1}}'. Unknown keys, wrong types and malformed arguments
raise ConfigError with one line that says what to change.
"""
import ast
import difflib
import os
import types
import typing


class ConfigError(Exception):
    """A user's mistake in a config file, an override, a data directory or a checkpoint.
    Entry points print its message as one line and exit 2, without a traceback."""


def _allowed_types(name, default, annotations):
    if name in annotations:
        ann = annotations[name]
        args = typing.get_args(ann)
        return tuple(a for a in args) if args else (ann,)
    return (type(default),)


def _type_names(types_):
    return " or ".join("None" if t is type(None) else t.__name__ for t in types_)


def check_value(name, value, allowed, source):
    """Return value converted to an allowed type, or raise ConfigError."""
    if float in allowed and type(value) is int:
        return float(value)  # an int where a float is expected is fine
    if type(value) in allowed:
        return value
    raise ConfigError(f"{name} expects {_type_names(allowed)}, got {type(value).__name__} "
                      f"{value!r} ({source}); fix it there")


def _parse_override(name, text, allowed):
    if bool in allowed and text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if str in allowed:
            return text  # a bare string: --dataset=shakespeare_char
        example = next((e for t, e in ((bool, "True"), (int, "4"), (float, "0.1"), (dict, "'{\"attn_qkv\": {\"lr\": 2}}'"))
                        if t in allowed), "None")
        raise ConfigError(f"--{name}={text} is not a valid {_type_names(allowed)}; "
                          f"write it as a Python literal, e.g. --{name}={example}") from None


def _unknown(name, keys, source):
    hint = difflib.get_close_matches(name, keys, n=1)
    hint = f"; did you mean {hint[0]!r}?" if hint else "; see the defaults at the top of train.py"
    return ConfigError(f"unknown config key {name!r} ({source}){hint}")


def read_config_file(path):
    """The assignments of a config file, as a dict."""
    if not os.path.isfile(path):
        what = "is not a file" if os.path.exists(path) else "does not exist"
        raise ConfigError(f"config file {path} {what}; give a path like config/train_default.py")
    try:
        with open(path) as f:
            source = f.read()
        code = compile(source, path, "exec")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path} ({e}); save it as UTF-8 text") from None
    except SyntaxError as e:
        where = f" line {e.lineno}" if e.lineno else ""
        raise ConfigError(f"config file {path}{where}: {e.msg}; it must be plain "
                          "Python assignments like n_layer = 4") from None
    ns = {}
    try:
        exec(code, ns)
    except (Exception, SystemExit) as e:  # a config file is code; report its failure in one line
        detail = (str(e).splitlines() or [""])[0]
        raise ConfigError(f"config file {path} failed to run: {type(e).__name__}: {detail}; fix it "
                          "(config files are plain assignments like n_layer = 4)") from None
    return {k: v for k, v in ns.items()
            if not k.startswith("_") and not isinstance(v, (types.ModuleType, types.FunctionType, type))}


def parse(defaults, argv, annotations=None):
    """Resolve argv (config files, then --key=value) against defaults. Returns (config, sources)."""
    annotations = annotations or {}
    config = dict(defaults)
    sources = {k: "default" for k in defaults}
    allowed = {k: _allowed_types(k, v, annotations) for k, v in defaults.items()}
    for arg in argv:
        if not arg.startswith("--"):
            if arg.startswith("-"):
                raise ConfigError(f"argument {arg!r} is malformed; overrides are written --key=value")
            for k, v in read_config_file(arg).items():
                if k not in config:
                    raise _unknown(k, list(config), f"in {arg}")
                config[k] = check_value(k, v, allowed[k], f"in {arg}")
                sources[k] = arg
            continue
        if "=" not in arg:
            raise ConfigError(f"argument {arg!r} has no value; write {arg}=VALUE")
        key, text = arg[2:].split("=", 1)
        if key not in config:
            raise _unknown(key, list(config), f"from {arg}")
        config[key] = check_value(key, _parse_override(key, text, allowed[key]), allowed[key],
                                  f"from {arg}")
        sources[key] = "command line"
    return config, sources


def configure(namespace, argv):
    """nanoGPT's entry point: resolve argv against the module-level defaults in `namespace`
    (a script's globals()), write the result back into it and return it as a dict."""
    defaults = {k: v for k, v in namespace.items()  # UPPER_CASE names are constants, not settings
                if not k.startswith("_") and not k.isupper()
                and isinstance(v, (int, float, bool, str, dict, type(None)))}
    config, _ = parse(defaults, argv, namespace.get("__annotations__", {}))
    namespace.update(config)
    return config
