#!/usr/bin/env bash
# On an air-gapped server: unpack what tools/airgap/bundle.py packed, then run a command with it, from the repository root.
#   bash tools/airgap/run.sh python3 bench/gpu.py --parts ulmfit,gpt2
#   BUNDLE=/path/to/build bash tools/airgap/run.sh python3 -m pytest tests
# BUNDLE: the folder holding site3XX.tar.xz and data.tar.xz (default tools/airgap/build). The packages are unpacked
# once into $UNPACK/site3XX (UNPACK default /tmp/nlpbook_airgap; byte-compiled there so that each process does not compile
# them again) and put on PYTHONPATH after the repository; the data goes to ../shared/data, where the package looks for
# it, unless a copy is there already.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=${BUNDLE:-tools/airgap/build}
PY=${PYTHON:-python3}
VER=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
ARCHIVE="$BUNDLE/site$VER.tar.xz"
[ -f "$ARCHIVE" ] || { echo "tools/airgap/run.sh: no $ARCHIVE for this Python ($("$PY" -V)): build it with python tools/airgap/bundle.py --python ${VER:0:1}.${VER:1}" >&2; exit 2; }
UNPACK=${UNPACK:-/tmp/nlpbook_airgap}
SITE="$UNPACK/site$VER"
if [ ! -d "$SITE" ]; then
  mkdir -p "$UNPACK" && tar -xJf "$ARCHIVE" -C "$UNPACK"
  "$PY" -m compileall -q -j 0 "$SITE" > /dev/null 2>&1 || true
fi
if [ ! -d ../shared/data/imdb_subset ]; then mkdir -p ../shared/data && tar -xJf "$BUNDLE/data.tar.xz" -C ../shared/data; fi
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 NLPBOOK_OFFLINE=1
exec "$@"
