"""The tally the manifest checkers share (rbac_check.py, deploy_check.py): one line per check,
then "N passed, M failed" and the exit status."""

import sys

_passed, _failed = 0, 0


def check(what, ok, detail=""):
    global _passed, _failed
    if ok:
        _passed += 1
        print(f"ok   {what}")
    else:
        _failed += 1
        print(f"FAIL {what} {detail}")


def finish():
    """Prints the tally and exits: 1 when a check failed."""
    print(f"{_passed} passed, {_failed} failed")
    sys.exit(1 if _failed else 0)
