"""
Small pieces shared by the entry points (train.py, sample.py, bench.py, scripts/*) that none
of them should import from another entry point.
"""


def signed(value, digits=2):
    """`value` with an explicit sign and `digits` decimals; a value that rounds to zero prints
    as +0.00 whatever its sign (a slope of -1e-17 is not negative)."""
    text = f"{value:+.{digits}f}"
    return f"{0.0:+.{digits}f}" if float(text) == 0 else text
