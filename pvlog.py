"""``pvlog``'s entry point: first, that ``daemon``, ``drivers`` and ``simulators`` are
pvlog's own.

The three folders are the project's layout, and ``daemon`` is also the import name of
python-daemon, one of the most installed packages on PyPI: installed into one
environment, the two overwrite each other's files, or one shadows the other on the
path. The supported installs are isolated (pipx, the service's own venv: see the
README); if pvlog finds itself beside another distribution's package anyway, it says
so in one line instead of failing somewhere inside with an ``ImportError``. Checked
without importing them (their marker line is read from the file).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PACKAGES = ("daemon", "drivers", "simulators")
MARKER = "PVLOG_PACKAGE = True"
"""A line each of the three packages' ``__init__.py`` holds."""


def foreign(packages: tuple[str, ...] = PACKAGES) -> str | None:
    """The first of ``packages`` that is not pvlog's, said as what to do; None: all are."""
    for name in packages:
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin) if spec and spec.origin else None
        try:
            ours = origin is not None and MARKER in origin.read_text(encoding="utf-8")
        except OSError:
            ours = False
        if not ours:
            where = origin or "nowhere"
            return (
                f"pvlog: the package {name!r} here is not pvlog's ({where}): install pvlog in an "
                "environment of its own (pipx install, or the service's venv), not beside "
                "another package of that name"
            )
    return None


def main() -> int:
    problem = foreign()
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    from daemon.cli import main as cli_main  # noqa: PLC0415 - only once they are checked

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
