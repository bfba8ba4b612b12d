"""How long `dlexp --help` and a what-if `dlexp diagnose` take as whole commands, next to a bare
`python -c pass` (the interpreter's own start-up), alternated in one run. Target: `dlexp --help` <= 0.5 s.

    python benchmarks/startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "dlexp --help": [sys.executable, "-m", "dlexp", "--help"],
    "dlexp diagnose (what-if)": [sys.executable, "-m", "dlexp", "diagnose", "--human", "0.01", "--train", "0.08",
                                 "--train-dev", "0.09", "--dev", "0.1", "--test", "0.11"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeat):
        for name, cmd in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["python -c pass"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:28s} median {med:.3f} s   (min {min(ts):.3f}, over python -c pass: {med - base:+.3f} s)")
    help_s = statistics.median(times["dlexp --help"])
    print(f"dlexp --help: {help_s:.3f} s (target <= 0.5 s: {'met' if help_s <= 0.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
