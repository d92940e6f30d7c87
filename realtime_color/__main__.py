"""``rtcolor`` and ``python -m realtime_color``: the command line, with Ctrl-C caught from the first instant.

The command line's own imports (typer, numpy, OpenCV) take a second or more; a Ctrl-C then must
end the run plainly (exit status 130, nothing written), not with a traceback from the middle of an
import and the signal's own exit status.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: nothing was written\n")
        sys.exit(130)
    cli_main()


if __name__ == "__main__":
    main()
