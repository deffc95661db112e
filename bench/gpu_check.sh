#!/usr/bin/env bash
# Issue 11's GPU measurements in one call on a lent GPU machine (python3 with torch and transformers, no package index).
# Parts (PARTS, default all, in this order):
#   ulmfit  bench/gpu_ulmfit.py: LM and classifier throughput, memory per item, perplexity at a large batch, classify 1,000 reviews
#   gpt2    bench/gpu_gpt2.py: GPT-2 decoding by route and dtype, profiles, static cache + torch.compile
#   cold    bench/gpu_gpt2_cold.py: fresh-process first calls (cuDNN attention or not) and GreedyGPT2's CUDA graph
#   full    items 1 and 2 end to end: `nlpbook-ch ulmfit --mode full` (pretrained: false) on the subset, its LM batch grown
#           to fit, then `nlpbook-ch classify --file` on 1,000 reviews with that run's model (FULL_CONFIG: the JSON overrides)
#   suite   the test suite, quick mode, with the `cuda` cells: the notebooks first, then the other tests, in the time left
# Carried: .carry/site312.tar.xz (fastai, spaCy, nbdev, execnb, IPython, nbconvert ... for Python 3.12; the machine has
# torch, transformers, matplotlib, pandas, scikit-learn, pytest) and .carry/data.tar.xz (imdb_subset, imdb_sample.csv,
# gpt2_tokenizer: unpacked to ../shared/data, where a checkout finds them); `python bench/gpu_bundle.py` builds both.
# The tree and the carried files must stay under 64 MiB together (2026-11-26: 38.9 MiB tree + 20.8 + 2.1 MiB).
# Writes into $OUT: env.txt, startup.txt, ulmfit.{json,log}, gpt2.{json,log}, cold.json, full.log, pytest.log (8 files at most:
# run at most 6 of them with env.txt and startup.txt, e.g. PARTS="cold full suite").
#   PARTS="cold suite" bash bench/gpu_check.sh [BUDGET_SECONDS]      (default 470)
set -uo pipefail
T0=$(date +%s); BUDGET=${1:-470}; OUT=${OUT:-/tmp/gpu_check_out}; mkdir -p "$OUT"; PARTS=${PARTS:-ulmfit gpt2 cold suite}
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
has() { [[ " $PARTS " == *" $1 "* ]]; }
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 NLPBOOK_OFFLINE=1 TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg
if [ -z "${NO_BUNDLE:-}" ]; then   # NO_BUNDLE=1: a CPU dry run here
  tar -xJf .carry/site312.tar.xz -C /tmp && export PYTHONPATH=$PWD:/tmp/site312
  # the wheels carry no bytecode: compile it once here (16 cores), not in the first process of each test that imports it
  python3 -m compileall -q -j 0 /tmp/site312 > /dev/null 2>&1 && echo "bundle compiled after $(( $(date +%s) - T0 )) s"; fi
if [ ! -d ../shared/data/imdb_subset ]; then mkdir -p ../shared/data && tar -xJf .carry/data.tar.xz -C ../shared/data && chmod -R a-w ../shared; fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc
  python3 -c "import sys, torch, fastai, transformers, spacy, nbdev, execnb, IPython, matplotlib; print(sys.version.split()[0], 'torch', torch.__version__, 'fastai', fastai.__version__, 'transformers', transformers.__version__, 'nbdev', nbdev.__version__, torch.cuda.get_device_name())"
  python3 -m pytest --version; ls ../shared/data; } > "$OUT/env.txt" 2>&1; cat "$OUT/env.txt"
# Where a CLI process's start-up goes (the CLI tests took ~1.5x their CPU time there: bench/results/gpu_suite.md)
{ python3 -X importtime -c "import nlpbook_ch.cli" 2>&1 | sort -t'|' -k2 -n | tail -25
  for i in 1 2; do /usr/bin/time -f "%e s: nlpbook-ch data" python3 -m nlpbook_ch.cli data > /dev/null; done; } > "$OUT/startup.txt" 2>&1
if has ulmfit; then
  python3 bench/gpu_ulmfit.py --out /tmp/gu --budget 120 2>&1 | grep -v -i "warn" | tee "$OUT/ulmfit.log"; cp /tmp/gu/gpu_ulmfit.json "$OUT/ulmfit.json"; fi
if has gpt2; then
  python3 bench/gpu_gpt2.py --out /tmp/gg --budget $(( $(left) > 300 ? 130 : 90 )) 2>&1 | grep -v -i "warn\|USDT" | tee "$OUT/gpt2.log"
  cp /tmp/gg/gpu_gpt2.json "$OUT/gpt2.json"; fi
if has cold; then
  timeout 120 python3 bench/gpu_gpt2_cold.py --out /tmp/ggc 2>&1 | grep -v -i "warn"; cp /tmp/ggc/gpu_gpt2_cold.json "$OUT/cold.json"; fi
if has full; then
  D=/tmp/nlpbook_full_data; mkdir -p "$D"; S=$(realpath ../shared/data)
  ln -sfn "$S/imdb_subset" "$D/imdb_full"; ln -sfn "$S/imdb_subset" "$D/imdb_subset"; ln -sfn "$S/imdb_sample.csv" "$D/imdb_sample.csv"
  echo "${FULL_CONFIG:-{\"pretrained\": false\}}" > /tmp/full_config.json; rm -rf /tmp/nlpbook_full_run
  python3 -c "import pandas as pd; print('\n'.join(' '.join(t.split()) for t in pd.read_csv('$S/imdb_sample.csv')['text'][:1000]))" > /tmp/reviews.txt
  { echo "config: $(cat /tmp/full_config.json); data: the subset as imdb_full"
    TR=$(( $(left) - 90 )); TR=$(( TR > 260 ? 260 : TR ))   # the training's share of the budget; 90 s stay for classify and the rest
    NLPBOOK_DATA=$D /usr/bin/time -f "%e s wall: nlpbook-ch ulmfit --mode full" timeout $(( TR > 10 ? TR : 10 )) python3 -m nlpbook_ch.cli ulmfit --mode full \
      --config /tmp/full_config.json --out /tmp/nlpbook_full_run 2>&1 | grep -v -i "warn"
    for flag in "" --fp32; do
      NLPBOOK_DATA=$D /usr/bin/time -f "%e s wall: nlpbook-ch classify --file (1,000 reviews) $flag" timeout 40 python3 -m nlpbook_ch.cli \
        classify --file /tmp/reviews.txt --model /tmp/nlpbook_full_run $flag > /tmp/classified$flag.txt 2> /tmp/classify_err.txt
      grep -v -i "warn" /tmp/classify_err.txt | tail -3; echo "$(wc -l < /tmp/classified$flag.txt) rows; labels: $(cut -f1 /tmp/classified$flag.txt | sort | uniq -c | tr '\n' ' ')"
    done
    python3 -c "a=[l.split('\t') for l in open('/tmp/classified.txt')]; b=[l.split('\t') for l in open('/tmp/classified--fp32.txt')]; s=[(x,y) for x,y in zip(a,b) if x[0]==y[0]]; print('default vs --fp32: same labels', len(s), 'of', len(a), '; max prob. difference where the same', max([abs(float(x[1])-float(y[1])) for x,y in s], default=None))"
  } > "$OUT/full.log" 2>&1; tail -25 "$OUT/full.log"; fi
if has suite; then
  L=$(left); echo "pytest gets $L s"
  if [ "$L" -le 30 ]; then echo "no time left for the suite ($L s): run PARTS=suite in its own call" | tee "$OUT/pytest.log"; else
  NLPBOOK_MODE=quick timeout -s INT -k 15 "$L" python3 -m pytest tests/test_notebooks.py tests --nb-flags cuda -v --durations=0 \
    -o faulthandler_timeout=120 -p no:cacheprovider > "$OUT/pytest.log" 2>&1; echo "pytest exit $? after $(( $(date +%s) - T0 )) s" | tee -a "$OUT/pytest.log"
  grep -E "ipynb: |FAILED|passed|failed" "$OUT/pytest.log" | tail -30; fi; fi
