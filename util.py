"""
Small pieces shared by the entry points (train.py, sample.py, bench.py, scripts/*) that none
of them should import from another entry point.
"""


def signed(value, digits=2):
    """`value` with an explicit sign and `digits` decimals; a value that rounds to zero prints
    as +0.00 whatever its sign (a slope of -1e-17 is not negative)."""
    text = f"{value:+.{digits}f}"
    return f"{0.0:+.{digits}f}" if float(text) == 0 else text


class UserError(Exception):
    """A mistake in the user's input: printed as one `error: ...` line, exit code 2."""


def run_cli(main, *errors):
    """Run an entry point's main(); a UserError (or one of `errors`) becomes one line on stderr
    and exit code 2, never a traceback. Library code raises; only this exits."""
    import sys
    try:
        code = main()
    except (UserError, *errors) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
