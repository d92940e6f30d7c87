"""Run a command and, SECONDS into it, sum the CPU time of its threads by name (Linux, /proc).

    python tools/thread_cpu.py SECONDS COMMAND...
    python tools/thread_cpu.py 19 rtcolor stream camera0.mp4 camera1.mp4 camera2.mp4 camera3.mp4 \\
        --loop --out 'rec/{name}.mp4' --duration 20 --report-every 0 --force

rtcolor's pipeline threads carry their stage's name (``rtcolor-encode``, ``rtcolor-batch``, ...);
threads a library starts (libx264's, the decoder's) inherit the name of the thread that started them.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time


def main() -> None:
    seconds, command = float(sys.argv[1]), sys.argv[2:]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    tick = os.sysconf("SC_CLK_TCK")
    per = collections.Counter()
    for task in os.listdir(f"/proc/{proc.pid}/task"):
        try:
            with open(f"/proc/{proc.pid}/task/{task}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{proc.pid}/task/{task}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a thread that ended meanwhile
        per[name] += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    proc.wait()
    total = sum(per.values())
    for name, cpu in per.most_common():
        print(f"{name:20s} {cpu:7.2f} s  {cpu / total:5.1%}")
    print(f"{'total':20s} {total:7.2f} s")


if __name__ == "__main__":
    main()
