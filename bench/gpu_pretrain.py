"""How far does stage-1 pretraining get on one GPU in a fixed time? The AWD-LSTM and the small GPT-2, side by side.

This is how the shipped pretrained models were made (their model cards give the command). Each model runs in its own
process (`awd` and `gpt2` subcommands), started together by `all`. A process tokenises the corpus, times a few training
steps, chooses the number of epochs that fits the time left (with a margin), records that choice, and trains with the
package's own `pretrain_awd_lstm` / `pretrain_gpt2`: the model card's command reruns it with that epoch count on any
machine. Figures go to `--results` (bench/results/pretrain_gpu.json for the shipped models' run).

    python bench/gpu_pretrain.py all --out /tmp/pt --budget 420 --results bench/results/pretrain_gpu.json
    python bench/gpu_pretrain.py all --corpus imdb_lm_corpus.txt.xz --tokenizer ../shared/data/gpt2_tokenizer --out /tmp/pt
    python bench/gpu_pretrain.py all --smoke --out /tmp/pt     # 200 reviews of the IMDB subset, tiny models, 120 s at most: on a CPU too

`--corpus` is `imdb_full` (the IMDB archive's 75,000 `train/` and `unsup/` reviews, found or downloaded by the package),
an IMDB folder, or a file with one review per line.
"""
import argparse, json, subprocess, sys, time
from dataclasses import replace
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C   # offline/cache defaults before torch and transformers are imported
import numpy as np, torch
from nlpbook_ch.pretrain import (PretrainConfig, GPT2PretrainConfig, pretrain_awd_lstm, pretrain_gpt2, corpus_tokens, split_docs,
                                 lm_stream, lm_batches, lm_loss, awd_lstm_lm, gpt2_corpus_blocks, n_batches, GPT2_SIZES)

def log_to(file):
    f = open(file, 'a', buffering=1)
    def log(*a):
        msg = ' '.join(str(o) for o in a)
        print(msg, flush=True); f.write(f'{time.strftime("%H:%M:%S")} {msg}\n')
    return log

sync = C.sync

def awd_step_time(cfg, ids, offsets, vocab, dev, n=25, amp=True):
    "Seconds per training step of the AWD-LSTM (median of the last n-5 steps), on a throwaway model."
    tr, _ = split_docs(len(offsets) - 1, cfg.valid_frac, cfg.seed)
    stream = lm_stream(ids, offsets, tr[:5000]).to(dev)
    m = awd_lstm_lm(len(vocab), cfg.size, cfg.drop_mult).to(dev); m.train(); m[0].reset()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    ts = []
    for i, (x, y) in enumerate(lm_batches(stream, cfg.bs, cfg.seq_len)):
        if i == n: break
        sync(); t = time.time()
        with torch.autocast('cuda', dtype=torch.bfloat16, enabled=amp and dev.type == 'cuda'): _, loss = lm_loss(m, x, y)
        opt.zero_grad(); loss.backward(); opt.step(); sync(); ts.append(time.time() - t)
    del m, opt
    return float(np.median(ts[5:] if len(ts) > 8 else ts))

def gpt2_step_time(cfg, train, dev, vocab_size, n=25):
    from transformers import GPT2Config, GPT2LMHeadModel
    m = GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, **GPT2_SIZES[cfg.size])).to(dev); m.train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    ts = []
    for i in range(min(n, max(1, len(train) // cfg.bs))):
        x = torch.as_tensor(train[i*cfg.bs:(i+1)*cfg.bs].astype(np.int64), device=dev)
        sync(); t = time.time()
        with torch.autocast('cuda', dtype=torch.bfloat16, enabled=dev.type == 'cuda'): loss = m(x, labels=x).loss
        opt.zero_grad(); loss.backward(); opt.step(); sync(); ts.append(time.time() - t)
    del m, opt
    return float(np.median(ts[5:] if len(ts) > 8 else ts))

def plan_epochs(seconds_left, epoch_seconds, lo=1, hi=30, margin=0.8):
    return int(max(lo, min(hi, (seconds_left * margin) // max(epoch_seconds, 1e-9))))

def run_awd(a):
    log = log_to(Path(a.out)/'awd.log')
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    cfg = PretrainConfig(size=a.awd_size, bs=a.awd_bs, lr=a.awd_lr, max_docs=a.max_docs, epochs=1).check()
    out = Path(a.out)/'awd'
    ids, offsets, vocab, meta = corpus_tokens(out, a.corpus, cfg, log)
    amp = True
    try: st = awd_step_time(cfg, ids, offsets, vocab, dev)
    except RuntimeError as e:
        log(f"AWD: bfloat16 autocast failed ({str(e)[:200]}); training in float32"); amp = False
        st = awd_step_time(cfg, ids, offsets, vocab, dev, amp=False)
    tr, _ = split_docs(len(offsets) - 1, cfg.valid_frac, cfg.seed)
    steps = n_batches(int((offsets[tr + 1] - offsets[tr]).sum()), cfg.bs, cfg.seq_len)
    left = a.deadline - time.time() - 25   # export and validation
    epochs = plan_epochs(left, steps * st * 1.08, hi=a.max_epochs)
    cfg = replace(cfg, epochs=epochs)
    log(f"AWD probe: {st*1000:.1f} ms/step, {steps} steps/epoch -> ~{steps*st:.0f} s/epoch; {left:.0f} s left: {epochs} epochs")
    cmd = (f"nlpbook-ch pretrain --model awd-lstm --out {a.awd_name} --size {cfg.size} --epochs {cfg.epochs} --bs {cfg.bs} "
           f"--lr {cfg.lr}" + (f" --max-docs {cfg.max_docs}" if cfg.max_docs else ''))
    try:
        card = pretrain_awd_lstm(out, a.corpus, cfg, device=dev, command=cmd, log=log, deadline=a.deadline - 15, amp=amp)
    except TimeoutError as e:
        log(f"AWD: {e}; keeping the finished epochs only"); card = dict(timeout=str(e))
    Path(a.out, 'awd_probe.json').write_text(json.dumps(dict(ms_per_step=st * 1000, steps_per_epoch=steps, epochs=epochs,
                                                             tokens_per_s_probe=cfg.bs * cfg.seq_len / st), indent=1))
    return card

def run_gpt2(a):
    log = log_to(Path(a.out)/'gpt2.log')
    from nlpbook_ch.models import load_tokenizer
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    tok = load_tokenizer(a.tokenizer)
    cfg = GPT2PretrainConfig(size=a.gpt2_size, max_docs=a.max_docs, bs=a.gpt2_bs, lr=a.gpt2_lr, block=a.gpt2_block, epochs=1).check()
    out = Path(a.out)/'gpt2'
    out.mkdir(parents=True, exist_ok=True)
    train, valid, meta = gpt2_corpus_blocks(out, a.corpus, tok, cfg, log)
    st = gpt2_step_time(cfg, train, dev, len(tok))
    steps = -(-len(train) // cfg.bs)
    left = a.deadline - time.time() - 30
    epochs = plan_epochs(left, steps * st * 1.6, hi=a.max_epochs)
    cfg = replace(cfg, epochs=epochs)
    log(f"GPT-2 probe: {st*1000:.1f} ms/step, {steps} steps/epoch -> ~{steps*st:.0f} s/epoch; {left:.0f} s left: {epochs} epochs")
    cmd = (f"nlpbook-ch pretrain --model gpt2 --out {a.gpt2_name} --size {cfg.size} --epochs {cfg.epochs} --bs {cfg.bs} "
           f"--lr {cfg.lr} --block {cfg.block}" + (f" --max-docs {cfg.max_docs}" if cfg.max_docs else ''))
    card = pretrain_gpt2(out, a.corpus, tok, cfg, device=dev, command=cmd, log=log, deadline=a.deadline - 20)
    Path(a.out, 'gpt2_probe.json').write_text(json.dumps(dict(ms_per_step=st * 1000, steps_per_epoch=steps, epochs=epochs,
                                                              tokens_per_s_probe=cfg.bs * cfg.block / st), indent=1))
    return card

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('what', choices=['all', 'awd', 'gpt2'], help='both models (each in its own process), or one')
    C.add_smoke(p, '200 reviews of the IMDB subset, tiny models, a 120 s budget')
    p.add_argument('--corpus', default='imdb_full', help='imdb_full (default), an IMDB folder or a one-review-per-line file')
    p.add_argument('--tokenizer', default='gpt2', help="GPT-2's tokenizer: a name or a folder (default gpt2)")
    p.add_argument('--out', required=True); p.add_argument('--budget', type=float, default=330)
    p.add_argument('--deadline', type=float, default=None); p.add_argument('--max-docs', type=int, default=None)
    p.add_argument('--awd-size', default='small'); p.add_argument('--gpt2-size', default='small')
    p.add_argument('--awd-bs', type=int, default=128); p.add_argument('--awd-lr', type=float, default=1e-2)
    p.add_argument('--gpt2-bs', type=int, default=64); p.add_argument('--gpt2-block', type=int, default=256); p.add_argument('--gpt2-lr', type=float, default=2e-3)
    p.add_argument('--max-epochs', type=int, default=20)
    p.add_argument('--awd-name', default='nlpbook_ch/pretrained/awd_lstm_imdb_small', help="the folder the model card's command names")
    p.add_argument('--gpt2-name', default='nlpbook_ch/pretrained/gpt2_imdb_small', help="the folder the model card's command names")
    p.add_argument('--results', default=None)
    a = p.parse_args(argv)
    if a.smoke:
        from nlpbook_ch.data import find_data
        a.corpus, a.tokenizer = str(find_data('imdb')), str(find_data('gpt2_tokenizer'))
        a.max_docs, a.awd_size, a.gpt2_size, a.budget = a.max_docs or 200, 'tiny', 'tiny', min(a.budget, 120)
        a.awd_bs, a.gpt2_bs, a.gpt2_block = 16, 8, 64   # the tiny GPT-2 has 128 positions
        a.results = a.results or str(Path(a.out)/'pretrain_gpu_smoke.json')
    else:
        from nlpbook_ch.pretrain import resolve_corpus
        a.corpus = str(resolve_corpus(a.corpus))
    Path(a.out).mkdir(parents=True, exist_ok=True)
    if a.deadline is None: a.deadline = time.time() + a.budget
    if a.what == 'awd': run_awd(a); return
    if a.what == 'gpt2': run_gpt2(a); return
    t0 = time.time()
    args = ['--corpus', a.corpus, '--tokenizer', a.tokenizer, '--out', a.out, '--deadline', str(a.deadline),
            '--awd-size', a.awd_size, '--gpt2-size', a.gpt2_size, '--awd-bs', str(a.awd_bs), '--awd-lr', str(a.awd_lr),
            '--gpt2-bs', str(a.gpt2_bs), '--gpt2-block', str(a.gpt2_block), '--gpt2-lr', str(a.gpt2_lr), '--max-epochs', str(a.max_epochs),
            '--awd-name', a.awd_name, '--gpt2-name', a.gpt2_name] + (['--max-docs', str(a.max_docs)] if a.max_docs else [])
    procs = {w: subprocess.Popen([sys.executable, __file__, w, *args]) for w in ('awd', 'gpt2')}
    rcs = {w: p.wait() for w, p in procs.items()}
    res = dict(device=torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu', torch=torch.__version__,
               wall_seconds=round(time.time() - t0, 1), return_codes=rcs, budget=a.budget, machine=C.machine_info(), smoke=a.smoke)
    for w, sub in (('awd', 'awd'), ('gpt2', 'gpt2')):
        probe, card = Path(a.out, f'{w}_probe.json'), Path(a.out, sub, 'final', 'model_card.json')
        res[w] = dict(probe=json.loads(probe.read_text()) if probe.exists() else None,
                      card={k: v for k, v in json.loads(card.read_text()).items() if k not in ('files',)} if card.exists() else None)
    text = json.dumps(res, indent=1)
    print(text)
    if a.results: C.write_results(Path(a.results).parent, Path(a.results).stem, res)
    if max(rcs.values()): sys.exit(max(rcs.values()))
    return res

if __name__ == '__main__': main()
