#!/bin/bash
# N 720p 15 fps cameras (generated gray H.264 clips, played at their rate, looped) through one
# `rtcolor stream` process for 20 s, each recorded; prints the worst camera's share of frames kept,
# the worst p95 and p50 capture-to-output latency, the process's peak RSS and the recording size.
#
#   EXTRA="--preset superfast" tools/cameras_ab.sh LABEL N      (run in an empty folder)
set -euo pipefail
label=$1; n=$2
RTCOLOR=${RTCOLOR:-rtcolor}
PY=$(dirname "$(command -v "$RTCOLOR")")/python
cams=""
for i in $(seq 0 $((n - 1))); do
  [ -f "camera$i.mp4" ] || "$PY" -c "from realtime_color.media.synth import write_clip as w; w('camera$i.mp4', seconds=10.0, width=1280, height=720, fps=15, gray=True, audio=False, seed=$i)"
  cams="$cams camera$i.mp4"
done
rm -rf rec && mkdir rec
# shellcheck disable=SC2086
/usr/bin/time -f "%M" -o rss.txt "$RTCOLOR" stream $cams --loop --out "rec/{name}.mp4" --duration 20 \
  --stats stats.json --report-every 0 --force ${EXTRA:-} 2>/dev/null
"$PY" - "$label" <<'PY'
import json, os, sys
d = json.load(open("stats.json"))
c = list(d["cameras"].values()) if "cameras" in d else [d]
mb = sum(os.path.getsize("rec/" + f) for f in os.listdir("rec")) / 1e6 / len(c)
rss = int(open("rss.txt").read().split()[-1]) / 1024
print(sys.argv[1], "kept", round(min(x["frames_out"] / x["frames_in"] for x in c), 3),
      "p95", max(x["latency_p95_ms"] for x in c), "p50", max(x["latency_p50_ms"] for x in c),
      "rss_mb", round(rss), "MB/cam", round(mb, 1), "batch", d.get("mean_batch"))
PY
