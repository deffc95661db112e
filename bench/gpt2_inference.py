#!/usr/bin/env python
"""How fast does GPT-2 decode on my CPU, and which decoding route should I use? Two parts:

- `speed` (default): tokens/s of GPT-2 small with the KV cache (`complete`, `generate`) against a naive no-cache loop,
  at 16/64/256 new tokens and batch 1 and 8; `next_token_table`'s overhead over a bare forward pass; the process's peak
  memory; the memory-bandwidth bound. The model is a *randomly initialised* GPT-2 small (the real 124M-parameter
  architecture: 12 layers, 768 wide, 12 heads, 50,257-token vocabulary, built in memory from `GPT2Config`): weights do not
  change the speed of greedy decoding, which always generates exactly n tokens here. The tokenizer is the real one from
  the shipped data. `--model DIR` measures a saved model folder instead (its own tokenizer).
- `ops`: ATen operators per decoded token (on a GPU about one kernel each: at batch 1 their count bounds the speed) of
  the package's `GreedyGPT2`, the same decoder with transformers' eager attention and GELU, and `generate`, on GPT-2
  small's shape and the shipped gpt2-imdb-small; their CPU tokens/s at batch 1; and whether their greedy tokens are
  `generate`'s in float32 and bfloat16 (15 prompts x 40 tokens).

    python bench/gpt2_inference.py                        # speed (~7 min on 2 cores)
    python bench/gpt2_inference.py --model nlpbook_ch/pretrained/gpt2_imdb_small
    python bench/gpt2_inference.py --part ops             # operators per token (~2 min)
    python bench/gpt2_inference.py --smoke [--part ops]   # a 2-layer random GPT-2, a few tokens: seconds

Writes bench/results/gpt2_inference{.md,.json} (with --model DIR: gpt2_inference_<folder name>.*) and, for `ops`,
greedy_ops{.md,.json}; the --smoke runs add `_smoke` to the name.
"""
import argparse, collections, statistics, sys, time, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C   # sets the offline/cache environment defaults before transformers is imported

PROMPT = "With great power comes great"
GPT2_SMALL = dict(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024)

def gpt2_small(seed:int=0, **overrides):
    "A randomly initialised GPT-2 (default: the 124M-parameter small architecture) in eval mode on the CPU."
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(**dict(GPT2_SMALL, **overrides)))
    return model.eval()

def load_gpt2_tokenizer():
    "The real GPT-2 tokenizer from the shipped data."
    from nlpbook_ch.data import find_data
    from nlpbook_ch.models import load_tokenizer
    return load_tokenizer(find_data('gpt2_tokenizer', download=False))

def n_params(model) -> int: return sum(p.numel() for p in model.parameters())   # tied weights counted once

def weight_bytes(model) -> int:
    "Bytes of parameters a decoding step must read: all of them (the tied embedding is read once, as the LM head)."
    return sum(p.numel() * p.element_size() for p in model.parameters())

# ---------------------------------------------------------------- generation methods
def naive_generate(model, ids, n_tokens:int, eos_id:int|None=None):
    """Greedy decoding without a KV cache: every step re-runs the whole sequence so far.
    `eos_id` is never chosen, as `generate` with `min_new_tokens` = `max_new_tokens` never chooses it (`cached_generate`)."""
    import torch
    with torch.no_grad():
        for _ in range(n_tokens):
            logits = model(ids, use_cache=False).logits[:, -1]
            if eos_id is not None: logits[:, eos_id] = -float('inf')
            ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
    return ids

def cached_generate(model, ids, n_tokens:int, pad_id:int):
    "`model.generate` with the KV cache and the same settings as `nlpbook_ch.gpt2.complete` (greedy, exactly n tokens)."
    import torch
    with torch.no_grad():
        return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n_tokens, min_new_tokens=n_tokens,
                              pad_token_id=pad_id, use_cache=True, do_sample=False)

def time_generation(model, tokenizer, n_tokens:int, batch:int=1, method:str='cache', prompt:str=PROMPT, repeats:int=1) -> dict:
    """Time one way of generating `n_tokens` greedy tokens after `prompt` for `batch` copies of it.

    method 'complete': `nlpbook_ch.gpt2.complete` (batch 1 only; KV cache through `generate`);
    'cache': `model.generate` with the KV cache (what `complete` calls), any batch; 'naive': `naive_generate`.
    Returns the median time of `repeats` runs, tokens/s (new tokens × batch / s), the peak RSS and the new ids of row 0."""
    import torch
    from nlpbook_ch.gpt2 import complete, encode_prompt
    if method == 'complete' and batch != 1: raise ValueError("complete() generates for one prompt; use method='cache' for batches")
    ids = encode_prompt(tokenizer, prompt).repeat(batch, 1)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    times, new = [], None
    C.reset_peak_rss()
    for _ in range(repeats):
        t0 = time.perf_counter()
        if method == 'complete': new = complete(model, tokenizer, prompt, n_tokens=n_tokens, return_ids=True)[1]
        elif method == 'cache': new = cached_generate(model, ids, n_tokens, pad)[0, ids.shape[1]:].tolist()
        elif method == 'naive': new = naive_generate(model, ids, n_tokens, tokenizer.eos_token_id)[0, ids.shape[1]:].tolist()
        else: raise ValueError(f"unknown method {method!r}")
        times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    return dict(method=method, batch=batch, n_tokens=n_tokens, prompt_tokens=ids.shape[1], repeats=repeats, seconds=s,
                seconds_all=[round(t, 4) for t in times], tokens_per_s=n_tokens * batch / s,
                ms_per_step=1000 * s / n_tokens, peak_rss_mb=C.peak_rss() / 2**20, new_ids=new)

def time_next_token_table(model, tokenizer, prompt:str=PROMPT, repeats:int=20, k:int=10) -> dict:
    "Median time of `next_token_table` vs one bare forward pass (eval, no_grad, same ids) over `repeats` alternating runs."
    import torch
    from nlpbook_ch.gpt2 import next_token_table, encode_prompt
    ids = encode_prompt(tokenizer, prompt)
    model.eval()
    def bare():
        with torch.no_grad(): return model(ids).logits
    bare(); next_token_table(model, tokenizer, prompt, k=k)   # warm-up
    tb, tt = [], []
    for _ in range(repeats):
        t0 = time.perf_counter(); bare(); tb.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); table = next_token_table(model, tokenizer, prompt, k=k); tt.append(time.perf_counter() - t0)
    b, t = statistics.median(tb), statistics.median(tt)
    return dict(repeats=repeats, k=k, forward_ms=1000 * b, table_ms=1000 * t, overhead_ms=1000 * (t - b), ratio=t / b,
                rows=len(table))

def copy_bandwidth(mb:int=512, repeats:int=5, device='cpu') -> dict:
    """Memory bandwidth of `device` (on the CPU with the current torch threads), best of `repeats` on an `mb` MiB float32
    tensor (far above the caches): `copy_` (GB/s counting bytes read + written) and `sum` (GB/s read; the closer model of
    streaming weights)."""
    import torch
    n = mb * 2**20 // 4
    src, dst = torch.ones(n, device=device), torch.empty(n, device=device)
    dst.copy_(src); src.sum()
    copy = min(_timed(lambda: dst.copy_(src)) for _ in range(repeats))
    read = min(_timed(lambda: src.sum()) for _ in range(repeats))
    nbytes = n * 4
    del src, dst
    return dict(mib=mb, copy_seconds=copy, copy_gbps=2 * nbytes / copy / 1e9, read_gbps=nbytes / read / 1e9,
                threads=torch.get_num_threads())

def _timed(f):
    C.sync(); t0 = time.perf_counter(); f(); C.sync(); return time.perf_counter() - t0

# ---------------------------------------------------------------- the benchmark
def thread_probe(model, tokenizer, threads=(1, 2), n_tokens:int=16, rounds:int=2) -> list:
    "tokens/s of a cached batch-1 generation with each torch thread count, alternating for `rounds` (best kept)."
    import torch
    before = torch.get_num_threads()
    best = {}
    try:
        for _ in range(rounds):
            for t in threads:
                torch.set_num_threads(t)
                r = time_generation(model, tokenizer, n_tokens, 1, 'cache')
                best[t] = max(best.get(t, 0), r['tokens_per_s'])
    finally: torch.set_num_threads(before)
    return [dict(threads=t, tokens_per_s=v) for t, v in best.items()]

def load_folder(model_dir):
    "The model (float32, CPU, eval mode) and tokenizer saved in `model_dir`, loaded with the package's `load_model`/`load_tokenizer`."
    from nlpbook_ch.models import load_model, load_tokenizer
    return load_model(model_dir, device='cpu'), load_tokenizer(model_dir)

SMOKE_GPT2 = dict(n_layer=2, n_embd=64, n_head=2)
"The --smoke runs' random GPT-2: GPT-2's vocabulary, 2 layers 64 wide."

def run(lengths=(16, 64, 256), batches=(1, 8), repeats:int=3, naive_budget_s:float=400, smoke=False, threads:int|None=1,
        log=print, model_dir=None, probe:bool=True) -> dict:
    "Every (method, length, batch) case, next_token_table's overhead and the bandwidth bound. Returns raw results."
    import torch
    t_start = time.perf_counter()
    C.reset_peak_rss()
    base = C.current_rss()
    if model_dir is None: model, tok = gpt2_small(**(SMOKE_GPT2 if smoke else {})), load_gpt2_tokenizer()
    else: model, tok = load_folder(model_dir)
    wb = weight_bytes(model)
    probe = thread_probe(model, tok, rounds=1 if smoke else 2) if probe else []
    if probe: log('thread probe (16 tokens, batch 1, KV cache): ' + ', '.join(f"{p['threads']} thread(s) {p['tokens_per_s']:.1f} tok/s" for p in probe))
    if threads: torch.set_num_threads(threads)
    info = C.machine_info()
    name = 'random 2-layer GPT-2 (a smoke run)' if smoke else 'random GPT-2 small'
    info['model'] = (f"{name}, {n_params(model)/1e6:.1f}M parameters, {wb/2**20:.0f} MiB float32" if model_dir is None else
                     f"{Path(model_dir).name} (the folder {model_dir}, loaded with `nlpbook_ch.models.load_model`), "
                     f"{n_params(model)/1e6:.1f}M parameters, {wb/2**20:.0f} MiB float32")
    log(info['model'])
    bw = copy_bandwidth(64 if smoke else 512)
    log(f"copy bandwidth {bw['copy_gbps']:.1f} GB/s (read+write), read (sum) {bw['read_gbps']:.1f} GB/s")
    cases = []
    # warm-up (first calls allocate and pick kernels)
    time_generation(model, tok, 4, 1, 'cache'); time_generation(model, tok, 4, 1, 'naive')
    skipped = []
    for n in lengths:
        for b in batches:
            for m in (['complete', 'cache'] if b == 1 else ['cache']) + ['naive']:
                if m == 'naive':
                    est = _naive_estimate(cases, n, b)
                    if est is not None and est > naive_budget_s:
                        skipped.append(dict(method=m, batch=b, n_tokens=n, estimated_s=round(est)))
                        log(f"skip naive n={n} batch={b}: estimated {est:.0f}s > budget {naive_budget_s:.0f}s")
                        continue
                r = time_generation(model, tok, n, b, m, repeats=1 if m == 'naive' else repeats)
                cases.append(r)
                log(f"{m:8s} n={n:3d} batch={b}: {r['seconds']:7.2f}s  {r['tokens_per_s']:7.1f} tok/s  "
                    f"peak RSS {r['peak_rss_mb']:.0f} MiB")
    ntt = time_next_token_table(model, tok, repeats=2 if smoke else 20)
    log(f"next_token_table {ntt['table_ms']:.1f} ms vs bare forward {ntt['forward_ms']:.1f} ms (x{ntt['ratio']:.2f})")
    info['load_at_end'] = C.loadavg()
    info['total_seconds'] = round(time.perf_counter() - t_start, 1)
    return dict(machine=info, weight_bytes=wb, params=n_params(model), rss_before_model_mb=(base or 0) / 2**20, thread_probe=probe,
                bandwidth=bw, cases=cases, skipped=skipped, next_token_table=ntt, model_dir=None if model_dir is None else str(model_dir),
                memory_method="peak resident set size of this process per case: Linux VmHWM from /proc/self/status, "
                              "reset before each case by writing 5 to /proc/self/clear_refs (whole process: Python, "
                              f"torch, the {wb/2**20:.0f} MiB model and activations, not just tensors)")

def _naive_estimate(cases, n, b):
    "Estimate a naive case's time from the longest measured naive case of the same batch (work grows ~ n²/2 + prompt·n)."
    prev = [c for c in cases if c['method'] == 'naive' and c['batch'] == b]
    if not prev: return None
    c = max(prev, key=lambda c: c['n_tokens'])
    work = lambda k, p: k * p + k * (k + 1) / 2
    return c['seconds'] * work(n, c['prompt_tokens']) / work(c['n_tokens'], c['prompt_tokens'])

def summarize(res:dict) -> list:
    "One row per (length, batch): tokens/s of each method, speed-up of the cache, % of the bandwidth bound."
    bw = res['bandwidth']['read_gbps'] * 1e9
    rows = []
    keys = sorted({(c['n_tokens'], c['batch']) for c in res['cases']})
    for n, b in keys:
        get = {c['method']: c for c in res['cases'] if (c['n_tokens'], c['batch']) == (n, b)}
        bound = b * bw / res['weight_bytes']
        row = {'new tokens': n, 'batch': b}
        for m, lab in (('complete', '`complete` tok/s'), ('cache', '`generate` (KV cache) tok/s'), ('naive', 'naive loop tok/s')):
            row[lab] = f"{get[m]['tokens_per_s']:.1f}" if m in get else ('n/a (batch 1 only)' if m == 'complete' else 'skipped')
        if 'naive' in get and 'cache' in get:
            row['cache speed-up'] = f"{get['cache']['tokens_per_s'] / get['naive']['tokens_per_s']:.2f}x"
        else:
            sk = [s for s in res['skipped'] if (s['n_tokens'], s['batch']) == (n, b)]
            row['cache speed-up'] = f"~{sk[0]['estimated_s'] / get['cache']['seconds']:.0f}x (est.)" if sk and 'cache' in get else '–'
        row['bandwidth bound tok/s'] = f"{bound:.1f}"
        row['cache / bound'] = f"{get['cache']['tokens_per_s'] / bound:.0%}" if 'cache' in get else '–'
        row['peak RSS MiB (cache / naive)'] = ' / '.join(f"{get[m]['peak_rss_mb']:.0f}" for m in ('cache', 'naive') if m in get)
        rows.append(row)
    return rows

def checks(res:dict) -> list:
    "Consistency notes: do the naive loop and the cached generation produce the same greedy tokens?"
    out = []
    for c in res['cases']:
        if c['method'] != 'naive': continue
        for o in res['cases']:
            if o['method'] in ('cache', 'complete') and (o['n_tokens'], o['batch']) == (c['n_tokens'], c['batch']):
                same = sum(x == y for x, y in zip(c['new_ids'], o['new_ids']))
                out.append(f"n={c['n_tokens']} batch={c['batch']}: naive vs {o['method']} agree on {same}/{len(c['new_ids'])} tokens")
    return out

def markdown(res:dict, smoke:bool, cmd:str) -> str:
    m, bw, ntt = res['machine'], res['bandwidth'], res['next_token_table']
    rows = summarize(res)
    skipped = [f"naive loop, {s['n_tokens']} tokens, batch {s['batch']}: skipped, estimated {s['estimated_s']} s "
               f"(over the per-case budget; estimate scales the longest measured naive case of that batch by the quadratic work)"
               for s in res['skipped']]
    folder = res.get('model_dir')
    wmib = res['weight_bytes'] / 2**20
    probe = res.get('thread_probe', [])
    parts = [
        f"# {'GPT-2 small' if folder is None else Path(folder).name} inference on CPU: KV cache vs naive loop", '',
        f"Generated by `{cmd}`{' (**--smoke** run: its numbers mean nothing)' if smoke else ''} on {m['date']}; whole run {m['total_seconds']:.0f} s. "
        "Do not edit by hand: rerun the script.", '',
        f"- Model: {m['model']}; {'the real GPT-2 tokenizer (shipped data)' if folder is None else 'the tokenizer saved in its folder'}. Prompt {PROMPT!r} "
        f"({res['cases'][0]['prompt_tokens'] if res['cases'] else '?'} tokens), greedy decoding of exactly n new tokens, float32, eval, no_grad.",
        "- `complete` = `nlpbook_ch.gpt2.complete` (one prompt only: it has no batch argument). Batch 8 is measured with "
        "`model.generate` directly, with the same settings `complete` uses (attention mask of ones, min=max new tokens, KV cache, greedy); "
        "`generate` rows at batch 1 are the same call without `complete`'s wrapper.",
        "- Naive loop: `model(ids, use_cache=False)` on the whole sequence at every step, argmax (end-of-text excluded, as "
        "`generate` excludes it when `min_new_tokens` equals `max_new_tokens`), append.",
        f"- tokens/s = new tokens × batch / wall seconds (median of {max(c['repeats'] for c in res['cases']) if res['cases'] else 0} runs for "
        f"the cached methods, one run for the naive loop), prompt processing included.",
        f"- Bandwidth bound: each decoding step must read every weight once ({wmib:.0f} MiB, "
        + ("far above the L3 cache" if wmib > 128 else "small enough to stay partly in the CPU caches, so the bound is only indicative")
        + f"); measured with {bw['threads']} thread(s) on a {bw['mib']} MiB tensor: read bandwidth (torch `sum`) "
        f"{bw['read_gbps']:.1f} GB/s, copy bandwidth (`copy_`, read+write counted) {bw['copy_gbps']:.1f} GB/s. "
        f"Bound = batch × {bw['read_gbps']:.1f} GB/s / weight bytes "
        f"= {res['bandwidth']['read_gbps']*1e9/res['weight_bytes']:.1f} steps/s. It ignores compute (which dominates at batch 8 "
        f"and for the naive loop) and cache effects.",
        f"- Memory: {res['memory_method']}. RSS before building the model: {res['rss_before_model_mb']:.0f} MiB.",
        f"- Compare ratios within this run only (the machine and its load are listed below). All cases ran with "
        f"{m['torch_threads']} torch thread(s) (`--threads`). "
        + ("A probe at the start of the run (best of its rounds, cached 16 tokens, batch 1): "
           + ', '.join(f"{p['threads']} thread(s) {p['tokens_per_s']:.1f} tok/s" for p in probe)
           + " (with other work on the cores, a second OpenMP thread can make things slower, not faster)." if probe
           else "No thread probe in this run (`--no-probe`)."), '',
        '## Tokens per second', '', C.md_table(rows), '', *[f'- {s}' for s in skipped], '',
        '## `next_token_table` vs one bare forward pass', '',
        f"Median of {ntt['repeats']} alternating runs on the {PROMPT!r} prompt (k={ntt['k']}): bare forward "
        f"{ntt['forward_ms']:.1f} ms, `next_token_table` {ntt['table_ms']:.1f} ms: overhead {ntt['overhead_ms']:.1f} ms "
        f"(x{ntt['ratio']:.2f}), for tokenizing, softmax over 50,257 logits, top-k, decoding k tokens and building a DataFrame.", '',
        '## Consistency', '', *[f'- {s}' for s in checks(res)], '',
        '## Machine', '', C.machine_md(m), '']
    return '\n'.join(parts)

# ---------------------------------------------------------------- part `ops`: operators per decoded token
def eager_decoder_class():
    "`GreedyGPT2` with transformers' eager attention and the model's MLP module (the decoder's earlier step)."
    import torch
    from nlpbook_ch.gpt2 import GreedyGPT2
    class EagerGreedyGPT2(GreedyGPT2):
        def _forward(self, ids, pos):
            B, T = ids.shape
            tr, H, hd = self.tr, self.H, self.hd
            at = pos + torch.arange(T, device=self.dev)
            x = tr.wte(ids) + tr.wpe(at)[None]
            hide = self.ar[None, :self.L] > at[:, None]
            for l, blk in enumerate(tr.h):
                q, k, v = blk.attn.c_attn(blk.ln_1(x)).split(H * hd, dim=2)
                q, k, v = (t.view(B, T, H, hd).transpose(1, 2) for t in (q, k, v))
                self.k[l].index_copy_(2, at, k); self.v[l].index_copy_(2, at, v)
                w = torch.matmul(q, self.k[l].transpose(-1, -2)) * blk.attn.scaling
                w = torch.softmax(w.masked_fill(hide, torch.finfo(w.dtype).min), dim=-1).to(self.v.dtype)
                x = x + blk.attn.c_proj(torch.matmul(w, self.v[l]).transpose(1, 2).reshape(B, T, H * hd))
                x = x + blk.mlp(blk.ln_2(x))
            return self.head(tr.ln_f(x[:, -1]))
    return EagerGreedyGPT2

NO_KERNEL = ('_unsafe_view', 'empty', 'empty_strided', 'lift_fresh', 'detach')   # not views by their schema, but no kernel either

def op_counter():
    "A dispatch mode that counts the ATen operators run under it that may launch a kernel (not views, allocations or aliases)."
    from torch.utils._python_dispatch import TorchDispatchMode
    class Count(TorchDispatchMode):
        def __init__(self): super().__init__(); self.ops = collections.Counter()
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if not func.is_view and func.overloadpacket.__name__ not in NO_KERNEL: self.ops[func.__name__] += 1
            return func(*args, **(kwargs or {}))
    return Count()

def routes(model, eos:int):
    "name -> f(ids, n) giving the n greedy new ids after ids (1, T)."
    import torch
    from nlpbook_ch.gpt2 import GreedyGPT2
    Eager = eager_decoder_class()
    def gen(ids, n):
        return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                              pad_token_id=eos)[:, ids.shape[1]:]
    L = lambda ids, n: ids.shape[1] + n
    return {'GreedyGPT2': lambda ids, n: GreedyGPT2(model, 1, L(ids, n), eos_id=eos)(ids, n),
            'GreedyGPT2, eager attention and GELU': lambda ids, n: Eager(model, 1, L(ids, n), eos_id=eos)(ids, n),
            'generate': gen}

def ops_per_token(f, ids, n:int) -> dict:
    "Operators per new token: those of an n-token call minus a 1-token call's (the prompt's pass), over n - 1, each operator's count, most frequent first."
    def count(k):
        with op_counter() as c: f(ids, k)
        return c.ops
    one, many = count(1), count(n)
    per = {k: (many[k] - one.get(k, 0)) / (n - 1) for k in many}
    return {k: v for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v > 0}

def measure(name:str, model, ids, n:int, repeats:int, eos:int, log=print) -> dict:
    import torch
    fs = routes(model, eos)
    res = dict(model=name, params=sum(p.numel() for p in model.parameters()), prompt_tokens=ids.shape[1], new_tokens=n, routes={})
    with torch.no_grad():
        for r, f in fs.items():
            ops = ops_per_token(f, ids, n)
            res['routes'][r] = dict(ops_per_token=round(sum(ops.values()), 2), ops={k: round(v, 2) for k, v in ops.items()}, seconds=[])
        ref = fs['generate'](ids, n)[0].tolist()
        for r, f in fs.items(): res['routes'][r]['same_tokens_as_generate'] = f(ids, n)[0].tolist() == ref
        for _ in range(repeats):   # alternating, so that the machine's drift falls on all routes alike
            for r, f in fs.items():
                t = time.perf_counter(); f(ids, n); res['routes'][r]['seconds'].append(time.perf_counter() - t)
    for r, d in res['routes'].items():
        d['tok_s'] = round(n / statistics.median(d['seconds']), 1)
        log(f"{name}: {r}: {d['ops_per_token']:.1f} ops/token, {d['tok_s']} tok/s, same tokens as generate: {d['same_tokens_as_generate']}")
    return res

PROMPTS = ("This movie was", "I have never seen", "The acting was", "What a waste of", "My favourite scene is",
           "The director clearly", "If you like horror films", "Honestly, the plot", "The soundtrack", "Ten out of ten",
           "The worst movie I have ever", "It starts slowly but", "Fans of the book will", "The ending", "Why did they")

def agreement(model, tok, n:int, prompts=PROMPTS, log=print) -> list:
    "Per dtype and decoder: in how many of `prompts` its n greedy tokens are generate's, and where the others first part."
    import torch
    from nlpbook_ch.gpt2 import encode_prompt, _parting
    rows = []
    for dt in (torch.float32, torch.bfloat16):
        m = model.to(dt)
        fs = routes(m, tok.eos_token_id)
        with torch.no_grad():
            encoded = [encode_prompt(tok, p) for p in prompts]
            ref = [fs['generate'](ids, n)[0].tolist() for ids in encoded]
            for r in ('GreedyGPT2', 'GreedyGPT2, eager attention and GELU'):
                # where each text parts from generate's, and how far apart the model scores the two tokens there (roundings)
                found = [_parting(m, ids[0].tolist(), fs[r](ids, n)[0].tolist(), e) for ids, e in zip(encoded, ref)]
                parts, gaps = [f[0] for f in found if f], [round(f[1], 2) for f in found if f]
                rows.append(dict(dtype=str(dt).replace('torch.', ''), route=r, same=len(prompts) - len(parts), prompts=len(prompts),
                                 first_differing_token=parts, gap_in_roundings=gaps))
                log(f"agreement {rows[-1]}")
    model.float()
    return rows

def ops_markdown(res:dict) -> str:
    "The `ops` part's results file."
    smoke = res.get('smoke', res.get('quick'))   # runs before the merge into this script said 'quick'
    rows = ['| model | route | ATen operators per new token | vs `GreedyGPT2` | CPU tok/s (batch 1) | same tokens as `generate` |', '|---|---|---|---|---|---|']
    for m in res['models']:
        base = m['routes']['GreedyGPT2']['ops_per_token']
        for r, d in m['routes'].items():
            rows.append(f"| {m['model']} ({m['params'] / 1e6:.1f}M) | {'`' + r + '`' if r in ('GreedyGPT2', 'generate') else r} | "
                        f"{d['ops_per_token']:.1f} | {d['ops_per_token'] / base:.2f}x | {d['tok_s']} | {'yes' if d['same_tokens_as_generate'] else 'no'} |")
    tops = [f"- {m['model']}, {r}: " + ', '.join(f'`{k}` {v:g}' for k, v in list(d['ops'].items())[:8]) for m in res['models'] for r, d in m['routes'].items()]
    return '\n'.join([f"# Operators per decoded token: `GreedyGPT2`, eager, `generate`{' (smoke run: not results)' if smoke else ''}", '',
        f"Generated by `python bench/gpt2_inference.py --part ops{' --smoke' if smoke else ''}` on {res['machine']['date']}; whole run {res['seconds']:.0f} s. "
        'Do not edit by hand: rerun the script.', '',
        f"- Greedy decoding at batch 1, float32, eval, no_grad; prompt of {res['models'][0]['prompt_tokens']} tokens, "
        f"{res['models'][0]['new_tokens']} new tokens; end-of-text excluded as `generate` with min_new_tokens = max_new_tokens excludes it.",
        '- Operators: the non-view ATen operators dispatched (a `TorchDispatchMode` counts them), per new token: the count of an '
        'n-token call minus that of a 1-token call (the prompt), over n - 1. Views, allocations and aliases are not counted '
        f"({', '.join(NO_KERNEL)} included). On CUDA most of these operators launch one kernel each, and attention runs other "
        'kernels than on a CPU; at batch 1, even replayed from a CUDA graph, each kernel takes about a microsecond or more, '
        "so their count is one bound on a GPU's decoding speed, reading the weights the other.",
        f"- CPU tok/s: median of {res['repeats']} call(s) per route, alternating, {res['machine']['torch_threads']} torch thread(s), "
        'decoder built in the call (as `GreedyGPT2(...)(ids, n)`). On a CPU the matrix products of a 124M-parameter model '
        'dominate, so fewer operators show most on the small model. **No GPU timing here**: what fewer kernels give on a GPU '
        'is for `bench/gpu.py --parts gpt2` to measure.', '',
        '## Per new token', '', *rows, '', '## The most frequent operators per new token', '', *tops, '', *agreement_md(res),
        '## Machine', '', C.machine_md(res['machine']), ''])

def agreement_md(res:dict) -> list:
    if not res.get('agreement'): return []
    a = res['agreement']
    rows = ['| dtype | decoder | prompts with `generate`\'s tokens | where the others first part (new token, from 0) | the two tokens\' scores there, apart by (roundings) |', '|---|---|---|---|---|']
    rows += [f"| {r['dtype']} | {r['route']} | {r['same']} of {r['prompts']} | {', '.join(map(str, r['first_differing_token'])) or '–'} | "
             f"{', '.join(f'{g:g}' for g in r.get('gap_in_roundings', [])) or '–'} |" for r in a]
    return ['## Same tokens as `generate`?', '',
            f"The shipped gpt2-imdb-small, {res['agreement_tokens']} greedy new tokens after each of {a[0]['prompts']} review openings "
            f"(`PROMPTS` in `bench/gpt2_inference.py`), on this CPU. Two routes that compute the same function in a different order round "
            'differently; in float32 that rarely changes an argmax, in 16-bit formats more often, and a greedy text that takes '
            'another token once goes on differently. Where a text parts from `generate`\'s, the last column gives how far apart the '
            'model (in that dtype, on the text so far) scores the two tokens, in units of rounding of its largest logit magnitude '
            '(`torch.finfo(dtype).eps` times it): 0 is an exact tie in that dtype; the notebook\'s test accepts up to 4.', '', *rows, '']

def run_ops(smoke=False, n:int|None=None, repeats:int|None=None, log=print) -> dict:
    "Part `ops`: operators per token and CPU tok/s of each route on GPT-2 small's shape and the shipped model (`smoke`: a 2-layer random GPT-2), and their agreement with `generate`."
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from nlpbook_ch.gpt2 import encode_prompt
    from nlpbook_ch.models import find_pretrained_gpt2, load_model, load_tokenizer
    t0, n, repeats = time.time(), n or (8 if smoke else 64), repeats or (1 if smoke else 5)
    if n < 2: raise ValueError(f'the ops part needs at least 2 new tokens, got {n}')
    folder = find_pretrained_gpt2('gpt2-imdb-small')
    tok = load_tokenizer(folder)
    ids = encode_prompt(tok, PROMPT)
    torch.manual_seed(0)
    if smoke: models = [('random 2-layer GPT-2', GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4)).eval())]
    else: models = [('GPT-2 small shape, random weights', GPT2LMHeadModel(GPT2Config()).eval()), ('gpt2-imdb-small', load_model(folder).eval())]
    res = dict(smoke=smoke, repeats=repeats, machine=C.machine_info(),
               models=[measure(name, m, ids, n, repeats, tok.eos_token_id, log=log) for name, m in models])
    if not smoke:
        res['agreement_tokens'] = 40
        res['agreement'] = agreement(load_model(folder).eval(), tok, res['agreement_tokens'], log=log)
    res['seconds'] = time.time() - t0
    return res

# ---------------------------------------------------------------- command line
def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--part', choices=('speed', 'ops'), default='speed', help='what to measure (default speed; see the top of this file)')
    C.add_smoke(p, 'a 2-layer random GPT-2 (or --model), 4 new tokens (ops: 8), no repeats, no thread probe')
    p.add_argument('--quick', action='store_true', help=argparse.SUPPRESS)   # the --smoke run's earlier name; results named *_quick
    p.add_argument('--lengths', type=int, nargs='+', help='speed: new-token counts (default 16 64 256; --smoke 4)')
    p.add_argument('--tokens', type=int, help='ops: new tokens per call (default 64; --smoke 8)')
    p.add_argument('--repeats', type=int, help='runs per cached case / timed calls per route, median reported (default 3 / 5; --smoke 1)')
    p.add_argument('--naive-budget', type=float, default=400, help='speed: skip a naive case estimated to take longer (s)')
    p.add_argument('--threads', type=int, default=1, help='torch threads for the measured cases (default 1, see the thread probe)')
    p.add_argument('--model', type=Path, help='speed: a saved model folder (save_pretrained, with its tokenizer) instead of the random GPT-2 small')
    p.add_argument('--no-probe', action='store_true', help='speed: skip the 1-vs-2-thread probe at the start')
    p.add_argument('--out', type=Path, default=C.RESULTS)
    argv = sys.argv[1:] if argv is None else list(argv)
    a = p.parse_args(argv)
    smoke = a.smoke or a.quick
    suffix = '_quick' if a.quick and not a.smoke else '_smoke' if smoke else ''
    if a.model is not None and not (a.model/'config.json').is_file():
        p.error(f"--model {a.model} is not a saved model folder (no config.json in it)")
    warnings.filterwarnings('ignore')
    if a.part == 'ops':
        import torch
        torch.set_num_threads(a.threads)
        res = run_ops(smoke, a.tokens, a.repeats)
        md = C.write_results(a.out, 'greedy_ops' + suffix, res, ops_markdown(res))
        print(f"wrote {md} and .json")
        return res
    lengths = a.lengths or ([4] if smoke else [16, 64, 256])
    res = run(lengths, (1, 8), a.repeats or (1 if smoke else 3), a.naive_budget, smoke=smoke, threads=a.threads,
              model_dir=a.model, probe=not (a.no_probe or smoke))
    stem = 'gpt2_inference' + (f'_{a.model.resolve().name}' if a.model is not None else '') + suffix
    cmd = ' '.join(['python bench/gpt2_inference.py', *map(str, argv)])
    md = C.write_results(a.out, stem, res, markdown(res, smoke, cmd))
    print(); print(C.md_table(summarize(res)))
    for s in checks(res): print(s)
    print(f"total {res['machine']['total_seconds']:.0f}s; wrote {md}")
    return res

if __name__ == '__main__': main()
