#!/usr/bin/env bash
# One call on a lent GPU machine (no package index; python3 with torch and transformers): stage-1 pretraining of both
# models within BUDGET seconds. Carried: .carry/site312.tar.xz (fastai + spaCy bundle), .carry/imdb_lm_corpus.txt.xz
# (the corpus, written by nlpbook_ch.pretrain.write_corpus), .carry/gpt2_tokenizer. Results: $OUT/log.txt and $OUT/pack.tar.part-*.
set -uo pipefail
BUDGET=${1:-420}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=true
tar -xJf .carry/site312.tar.xz -C /tmp && export PYTHONPATH=$PWD:/tmp/site312
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, fastai, transformers, spacy; print('torch', torch.__version__, 'fastai', fastai.__version__, 'transformers', transformers.__version__, 'spacy', spacy.__version__, torch.cuda.get_device_name())"
python3 bench/gpu_pretrain.py all --corpus .carry/imdb_lm_corpus.txt.xz --tokenizer .carry/gpt2_tokenizer --out /tmp/pt \
  --budget "$BUDGET" --results /tmp/pt/pretrain_gpu.json 2>&1 | grep -v -i "warn" | tee "$OUT/log.txt"
mkdir -p /tmp/pack && cd /tmp/pt && cp -r awd/final /tmp/pack/awd 2>/dev/null; cp -r gpt2/final /tmp/pack/gpt2 2>/dev/null
cp -f *.log *.json awd/tokens/meta.json /tmp/pack/ 2>/dev/null; cp -f awd/tokens/meta.json /tmp/pack/awd_tokens_meta.json 2>/dev/null
cd /tmp && tar cf - pack | split -b 15M - "$OUT/pack.tar.part-" && ls -la "$OUT"
