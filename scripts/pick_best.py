"""Pick the best of several trained checkpoints in /tmp (GPU-machine runs) and record all metadata.

Best = highest validation PSNR among models whose validation colourfulness reaches 12.
"""

import glob
import json
import os
import shutil

from realtime_color.weights import read_metadata

rows = {}
for p in sorted(glob.glob("/tmp/model_*.safetensors")):
    m = rows[p] = read_metadata(p)
    json.dump(m, open(os.path.join(os.environ["OUT"], "logs", os.path.basename(p) + ".json"), "w"), indent=1)
ok = {p: m for p, m in rows.items() if m["metrics"]["validation"]["colourfulness"] >= 12} or rows
best = max(ok, key=lambda p: ok[p]["metrics"]["validation"]["psnr"])
print("best", best, ok[best]["metrics"]["validation"])
shutil.copy(best, "/tmp/best.safetensors")
open(os.path.join(os.environ["OUT"], "logs", "best.txt"), "w").write(best + "\n")
