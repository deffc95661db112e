#!/usr/bin/env python
"""GPT-2 small inference speed on CPU: KV-cached generation vs a naive no-cache loop, and `next_token_table`'s overhead.

The model is a *randomly initialised* GPT-2 small (the real 124M-parameter architecture: 12 layers, 768 wide,
12 heads, 50,257-token vocabulary, built in memory from `GPT2Config`); weights do not change the speed of
greedy decoding, which always generates exactly n tokens here. The tokenizer is the real one from the shipped data.

    python bench/gpt2_inference.py           # default: 16/64/256 new tokens, batch 1 and 8
    python bench/gpt2_inference.py --quick   # 16 new tokens, batch 1 and 8, no repeats: about a minute
    python bench/gpt2_inference.py --model pretrained/gpt2_imdb_small   # a saved model folder instead (its own tokenizer)

Writes bench/results/gpt2_inference{.md,.json} (the --quick run: gpt2_inference_quick.*; with --model DIR:
gpt2_inference_<folder name>.*).
"""
import argparse, json, statistics, sys, time, warnings
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
    from nlpbook_ch.data import find_data
    from nlpbook_ch.gpt2 import load_tokenizer
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
    from nlpbook_ch.gpt2 import load_model, load_tokenizer
    return load_model(model_dir, device='cpu'), load_tokenizer(model_dir)

def run(lengths=(16, 64, 256), batches=(1, 8), repeats:int=3, naive_budget_s:float=400, quick=False, threads:int|None=1,
        log=print, model_dir=None, probe:bool=True) -> dict:
    "Every (method, length, batch) case, next_token_table's overhead and the bandwidth bound. Returns raw results."
    import torch
    t_start = time.perf_counter()
    C.reset_peak_rss()
    base = C.current_rss()
    if model_dir is None: model, tok = gpt2_small(), load_gpt2_tokenizer()
    else: model, tok = load_folder(model_dir)
    wb = weight_bytes(model)
    probe = thread_probe(model, tok, rounds=1 if quick else 2) if probe else []
    if probe: log('thread probe (16 tokens, batch 1, KV cache): ' + ', '.join(f"{p['threads']} thread(s) {p['tokens_per_s']:.1f} tok/s" for p in probe))
    if threads: torch.set_num_threads(threads)
    info = C.machine_info()
    info['model'] = (f"random GPT-2 small, {n_params(model)/1e6:.1f}M parameters, {wb/2**20:.0f} MiB float32" if model_dir is None else
                     f"{Path(model_dir).name} (the folder {model_dir}, loaded with `nlpbook_ch.gpt2.load_model`), "
                     f"{n_params(model)/1e6:.1f}M parameters, {wb/2**20:.0f} MiB float32")
    log(info['model'])
    bw = copy_bandwidth(256 if quick else 512)
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
    ntt = time_next_token_table(model, tok, repeats=5 if quick else 20)
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

def markdown(res:dict, quick:bool, cmd:str) -> str:
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
        f"Generated by `{cmd}`{' (**--quick** smoke run)' if quick else ''} on {m['date']}; whole run {m['total_seconds']:.0f} s. "
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
        f"- Shared, noisy 2-core machine: compare ratios within this run only. All cases ran with {m['torch_threads']} torch "
        "thread(s) (`--threads`). "
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

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--quick', action='store_true', help='16 new tokens only, no repeats: about a minute')
    p.add_argument('--lengths', type=int, nargs='+', help='new-token counts (default 16 64 256)')
    p.add_argument('--repeats', type=int, help='runs per cached case, median reported (default 3; --quick 1)')
    p.add_argument('--naive-budget', type=float, default=400, help='skip a naive case estimated to take longer (s)')
    p.add_argument('--threads', type=int, default=1, help='torch threads for the measured cases (default 1, see the probe)')
    p.add_argument('--model', type=Path, help='a saved model folder (save_pretrained, with its tokenizer) instead of the random GPT-2 small')
    p.add_argument('--no-probe', action='store_true', help='skip the 1-vs-2-thread probe at the start')
    p.add_argument('--out', type=Path, default=C.RESULTS)
    argv = sys.argv[1:] if argv is None else list(argv)
    a = p.parse_args(argv)
    if a.model is not None and not (a.model/'config.json').is_file():
        p.error(f"--model {a.model} is not a saved model folder (no config.json in it)")
    warnings.filterwarnings('ignore')
    lengths = a.lengths or ([16] if a.quick else [16, 64, 256])
    res = run(lengths, (1, 8), a.repeats or (1 if a.quick else 3), a.naive_budget, quick=a.quick, threads=a.threads,
              model_dir=a.model, probe=not a.no_probe)
    a.out.mkdir(parents=True, exist_ok=True)
    stem = 'gpt2_inference' + (f'_{a.model.resolve().name}' if a.model is not None else '') + ('_quick' if a.quick else '')
    cmd = ' '.join(['python bench/gpt2_inference.py', *map(str, argv)])
    (a.out/f'{stem}.json').write_text(json.dumps(res, indent=1, default=str))
    (a.out/f'{stem}.md').write_text(markdown(res, a.quick, cmd))
    print(); print(C.md_table(summarize(res)))
    for s in checks(res): print(s)
    print(f"total {res['machine']['total_seconds']:.0f}s; wrote {a.out/stem}.md")
    return res

if __name__ == '__main__': main()
