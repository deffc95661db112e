#!/usr/bin/env python
"""GPT-2 small decoding on a CUDA GPU: tokens/s at batch 1 and 32 in float32, bfloat16 and float16, for plain `generate`,
the package's `complete` (its `generate` route and its `GreedyGPT2` route), and the variants that explain the differences
(SDPA without cuDNN attention, eager attention, a static KV cache compiled by torch.compile); a profile of one call per
dtype; the card's memory-bandwidth bound (issue 11, item 3).

The model is a randomly initialised GPT-2 small (124M parameters, built from `GPT2Config`): decoding speed does not depend on
the weights, and every case generates exactly n tokens (`min_new_tokens`). The tokenizer is the real GPT-2 one.

    python bench/gpu_gpt2.py --out DIR            # on a GPU (about 2-3 minutes)
    python bench/gpu_gpt2.py --out DIR --smoke    # every code path in seconds, on a tiny GPT-2 (CPU or GPU)
    python bench/gpu_gpt2.py --markdown DIR/gpu_gpt2.json   # bench/results/gpt2_gpu.md from a run's JSON
"""
import argparse, copy, json, statistics, subprocess, sys, time, traceback, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C
from gpt2_inference import gpt2_small, load_gpt2_tokenizer, weight_bytes, copy_bandwidth, PROMPT
from greedy_ops import eager_decoder_class

DTYPES = ('float32', 'bfloat16', 'float16')

sync = C.sync

def timed(f, repeats=2, slow_s=4.0) -> dict:
    "Seconds of the first (cold) call and the median of `repeats` more (1 if the cold call took over `slow_s`)."
    sync(); t0 = time.perf_counter(); r = f(); sync(); cold = time.perf_counter() - t0
    warm = []
    for _ in range(1 if cold > slow_s else repeats):
        sync(); t0 = time.perf_counter(); r = f(); sync(); warm.append(time.perf_counter() - t0)
    return dict(cold_s=round(cold, 4), warm_s=round(statistics.median(warm), 4), result=r)

def cases_for(model, tok, n:int, batch32:bool=True, log=print) -> list:
    "Every decoding route at batch 1 (and 32) on `model`: tokens/s cold and warm, and whether the tokens agree."
    import torch
    from torch.nn.attention import sdpa_kernel, SDPBackend
    from nlpbook_ch.gpt2 import complete, encode_prompt, GreedyGPT2, _eos_ids
    dev = next(model.parameters()).device
    ids = encode_prompt(tok, PROMPT).to(dev)
    eos = tok.eos_token_id
    def gen(x, **kw):
        with torch.no_grad(): return model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, min_new_tokens=n,
                                                    do_sample=False, pad_token_id=eos, **kw)[:, x.shape[1]:]
    def no_cudnn():
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]): return gen(ids)
    def eager():
        model.set_attn_implementation('eager')
        try: return gen(ids)
        finally: model.set_attn_implementation('sdpa')
    routes = [('generate', lambda: gen(ids)),
              ('complete (generate route, fast=False)', lambda: complete(model, tok, PROMPT, n, return_ids=True, fast=False)[1]),
              ('complete (default: GreedyGPT2 on CUDA)', lambda: complete(model, tok, PROMPT, n, return_ids=True)[1]),
              ('generate, SDPA without cuDNN attention', no_cudnn),
              ('generate, eager attention', eager)]
    # the package's decoder with the attention and GELU it had before (transformers' eager forms: ~2x its operators per
    # token, bench/greedy_ops.py): kept across calls like complete's, so that warm calls replay its graph
    old = eager_decoder_class()(model, 1, ids.shape[1] + n, eos_id=_eos_ids(model, tok))
    old_failed = {}
    def eager_greedy():   # its own capture: a failure of it must not switch graphs off for the package's decoder, or be blamed on it
        kept, GreedyGPT2.graph_failed = GreedyGPT2.graph_failed, old_failed.get('why')
        try: return old(ids, n)
        finally: old_failed['why'], GreedyGPT2.graph_failed = GreedyGPT2.graph_failed, kept
    routes.append(('GreedyGPT2, eager attention and GELU', eager_greedy))
    if batch32:
        x32 = ids.repeat(32, 1)
        routes += [('generate, batch 32', lambda: gen(x32)),
                   ('GreedyGPT2, batch 32', lambda: GreedyGPT2(model, 32, x32.shape[1] + n, eos_id=_eos_ids(model, tok))(x32, n))]
    rows, ref = [], None
    for name, f in routes:
        try:
            t = timed(f)
            out = t.pop('result')
            out = out.tolist() if torch.is_tensor(out) else out
            first = out[0] if out and isinstance(out[0], list) else out
            if ref is None: ref = first
            batch = 32 if 'batch 32' in name else 1
            row = dict(route=name, batch=batch, n=n, **t, tok_s_warm=round(batch * n / t['warm_s'], 1),
                       tok_s_cold=round(batch * n / t['cold_s'], 1), same_tokens_as_generate=first == ref,
                       agree_prefix=next((i for i, (a, b) in enumerate(zip(first, ref)) if a != b), len(ref)))
        except Exception as e:
            row = dict(route=name, error=f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'[:300])
        log(f"  {name:42} " + (f"{row['tok_s_warm']:9.1f} tok/s warm, {row['tok_s_cold']:9.1f} cold, same tokens {row['same_tokens_as_generate']}"
                                if 'tok_s_warm' in row else row['error']))
        rows.append(row)
    for row in rows:
        if row['route'] == 'GreedyGPT2, eager attention and GELU': row['graph_failed'] = old_failed.get('why')   # None: captured (or a CPU)
    return rows

def profile(model, tok, n:int, fast:bool, top:int=12) -> dict:
    "torch.profiler over one warm `complete` call: the ops with the most host time, the kernels with the most GPU time, kernel launches."
    import torch
    from torch.profiler import profile as prof, ProfilerActivity
    from nlpbook_ch.gpt2 import complete
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    complete(model, tok, PROMPT, n, fast=fast)
    sync(); t0 = time.perf_counter()
    with prof(activities=acts) as p:
        complete(model, tok, PROMPT, n, fast=fast); sync()
    wall = time.perf_counter() - t0
    ev = p.key_averages()
    dev_attr = 'self_device_time_total' if hasattr(ev[0], 'self_device_time_total') else 'self_cuda_time_total'
    host = sorted(ev, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    devk = sorted([e for e in ev if getattr(e, dev_attr, 0) > 0], key=lambda e: getattr(e, dev_attr), reverse=True)[:8]
    launches = sum(e.count for e in ev if e.key in ('cudaLaunchKernel', 'cuLaunchKernel', 'cudaLaunchKernelExC', 'cudaGraphLaunch'))
    graphs = sum(e.count for e in ev if e.key == 'cudaGraphLaunch')
    return dict(n=n, fast=fast, wall_s=round(wall, 4), kernel_launch_calls=launches, graph_launches=graphs,
                host_ops=[dict(op=e.key, calls=e.count, self_cpu_ms=round(e.self_cpu_time_total / 1000, 2)) for e in host],
                gpu_kernels=[dict(kernel=e.key[:90], calls=e.count, gpu_ms=round(getattr(e, dev_attr) / 1000, 2)) for e in devk],
                total_self_cpu_ms=round(sum(e.self_cpu_time_total for e in ev) / 1000, 1),
                total_gpu_ms=round(sum(getattr(e, dev_attr, 0) for e in ev) / 1000, 1))

_COMPILE = r'''
import json, sys, time, warnings, torch
warnings.filterwarnings('ignore')
sys.path.insert(0, sys.argv[1])
from gpt2_inference import gpt2_small, load_gpt2_tokenizer, PROMPT
from nlpbook_ch.gpt2 import encode_prompt
dtype, n, smoke = getattr(torch, sys.argv[2]), int(sys.argv[3]), sys.argv[4] == '1'
tok = load_gpt2_tokenizer()
m = (gpt2_small(n_layer=2, n_embd=64, n_head=2) if smoke else gpt2_small()).to('cuda' if torch.cuda.is_available() else 'cpu', dtype).eval()
ids = encode_prompt(tok, PROMPT).to(m.device)
res = dict(dtype=sys.argv[2], n=n)
def gen():
    with torch.no_grad():
        return m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                          pad_token_id=tok.eos_token_id, cache_implementation='static')
for i in range(4):
    if torch.cuda.is_available(): torch.cuda.synchronize()
    t0 = time.perf_counter(); out = gen()
    if torch.cuda.is_available(): torch.cuda.synchronize()
    res[f'call{i}_s'] = round(time.perf_counter() - t0, 3)
    print(json.dumps(res), flush=True)
res['tokens'] = out[0, ids.shape[1]:].tolist()
print(json.dumps(res), flush=True)
'''

def static_compiled(dtype:str, n:int, smoke:bool, timeout:float) -> dict:
    "`generate(cache_implementation='static')` in a fresh process (transformers compiles the forward on CUDA): each call's seconds."
    try:
        p = subprocess.run([sys.executable, '-c', _COMPILE, str(C.BENCH), dtype, str(n), '1' if smoke else '0'],
                           capture_output=True, text=True, timeout=timeout)
        lines = [l for l in p.stdout.splitlines() if l.startswith('{')]
        res = json.loads(lines[-1]) if lines else dict(error=p.stderr.strip().splitlines()[-1][:300] if p.stderr.strip() else f'exit {p.returncode}')
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b'').decode() if isinstance(e.stdout, bytes) else (e.stdout or '')
        lines = [l for l in out.splitlines() if l.startswith('{')]
        res = dict(json.loads(lines[-1]) if lines else {}, error=f'stopped after {timeout:.0f} s')
    return res

def run(out:Path, smoke=False, budget:float=200, log=print) -> dict:
    import torch
    warnings.filterwarnings('ignore')
    t_start = time.time(); deadline = t_start + budget
    out.mkdir(parents=True, exist_ok=True)
    res = dict(machine=C.machine_info(), smoke=smoke, prompt=PROMPT, budget_s=budget)
    if torch.cuda.is_available():
        res['gpu'] = dict(name=torch.cuda.get_device_name(), sdpa=dict(flash=torch.backends.cuda.flash_sdp_enabled(),
                          mem_efficient=torch.backends.cuda.mem_efficient_sdp_enabled(), math=torch.backends.cuda.math_sdp_enabled(),
                          cudnn=torch.backends.cuda.cudnn_sdp_enabled()))
    def save(): (out/'gpu_gpt2.json').write_text(json.dumps(res, indent=1, default=str))
    from nlpbook_ch.gpt2 import GreedyGPT2
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    tok = load_gpt2_tokenizer()
    base = gpt2_small(n_layer=2, n_embd=64, n_head=2) if smoke else gpt2_small()
    n = 8 if smoke else 64
    res['bandwidth_gbs'] = round(copy_bandwidth(64 if smoke else 1024, device='cuda')['copy_gbps'], 1) if dev == 'cuda' else None
    res['dtypes'] = {}
    for dt in DTYPES:
        if time.time() > deadline: res['dtypes'][dt] = dict(skipped='time budget'); continue
        log(f'{dt}:')
        try:
            m = copy.deepcopy(base).to(dev, getattr(torch, dt)).eval()
            d = dict(weight_bytes=weight_bytes(m))
            if res['bandwidth_gbs']: d['bound_tok_s_batch1'] = round(res['bandwidth_gbs'] * 1e9 / 2 / d['weight_bytes'], 1)   # read-only: half the copy's traffic
            GreedyGPT2.graph_failed = None   # each dtype tries its own capture
            d['cases'] = cases_for(m, tok, n, log=log)
            if time.time() < deadline: d['profile_generate'] = profile(m, tok, 16 if not smoke else 4, fast=False)
            if time.time() < deadline: d['profile_greedy'] = profile(m, tok, 16 if not smoke else 4, fast=True)
            d['graph_failed'] = GreedyGPT2.graph_failed   # why GreedyGPT2 could not capture a CUDA graph (None: it did, or a CPU)
            if d['graph_failed']: log(f"  GreedyGPT2's graph capture failed: {d['graph_failed']}")
        except Exception as e:
            d = dict(error=f'{type(e).__name__}: {e}'[:300], trace=traceback.format_exc()[-1500:])
        res['dtypes'][dt] = d; m = None; save()
        if dev == 'cuda': torch.cuda.empty_cache()
    left = deadline - time.time()
    best = max(DTYPES, key=lambda k: next((c.get('tok_s_warm', 0) for c in res['dtypes'].get(k, {}).get('cases', [])
                                           if c['route'] == 'generate'), 0))
    if left > 30:
        log(f'static cache + torch.compile ({best}), up to {left:.0f} s ...')
        res['static_compiled'] = static_compiled(best, n, smoke, timeout=left)
        log(f"  {res['static_compiled']}")
    else: res['static_compiled'] = dict(skipped='time budget')
    res['total_s'] = round(time.time() - t_start, 1); save()
    return res

def markdown(res:dict) -> str:
    m, g = res['machine'], res.get('gpu', {})
    L = ['# GPT-2 small decoding on a GPU: tokens/s by route and dtype', '',
         f"Measured by `bench/gpu_gpt2.py` on **{g.get('name', 'no GPU (CPU)')}**, {m['date']}; torch {m['torch']}, transformers "
         f"{m.get('transformers')}. Whole run {res.get('total_s')} s{' (SMOKE run: tiny model, not results)' if res.get('smoke') else ''}. "
         f"Do not edit by hand: rerun the script and `--markdown` its JSON.", '',
         f"Random GPT-2 small (124M parameters), prompt {res['prompt']!r} (5 tokens), greedy, exactly n new tokens. 'warm' is the median "
         f"of the calls after the first; 'cold' the first call of the route in this process (the first route of each dtype also "
         f"pays for CUDA/cuBLAS start-up). SDPA backends enabled by default: {g.get('sdpa')}. Device copy bandwidth: "
         f"{res.get('bandwidth_gbs')} GB/s (bytes read + written); the batch-1 bound is half of it (weights are only read) over "
         f"the weights' bytes.", '']
    for dt, d in res.get('dtypes', {}).items():
        if 'cases' not in d: L += [f"## {dt}: {d.get('error') or d.get('skipped')}", '']; continue
        L += [f"## {dt} (weights {d['weight_bytes'] / 2**20:.0f} MiB; bandwidth bound at batch 1: {d.get('bound_tok_s_batch1', 'n/a')} tok/s)", '',
              '| route | batch | new tokens | tok/s warm | tok/s cold | same tokens as `generate` |', '|---|---|---|---|---|---|']
        for c in d['cases']:
            if 'error' in c: L.append(f"| {c['route']} | | | {c['error']} | | |")
            else: L.append(f"| {c['route']} | {c['batch']} | {c['n']} | {c['tok_s_warm']:,} | {c['tok_s_cold']:,} | "
                           f"{c['same_tokens_as_generate']}{'' if c['same_tokens_as_generate'] else ' (first ' + str(c['agree_prefix']) + ' agree)'} |")
        for key, title in (('profile_generate', '`complete(fast=False)` (generate)'), ('profile_greedy', '`complete(fast=True)` (GreedyGPT2)')):
            p = d.get(key)
            if not p: continue
            att = sorted({o['op'] for o in p['host_ops'] if 'attention' in o['op']})
            if att: L += ['', f"Attention in {title}: {', '.join('`' + a + '`' for a in att)}."]
            gl = p.get('graph_launches')   # runs before 2026-11-27 did not count graph launches apart
            if key == 'profile_greedy' and g and (gl == 0 if gl is not None else p['kernel_launch_calls'] > 10 * p['n']):
                L += ['', f"**The CUDA graph was not used in this run**: {'no graph launch and ' if gl == 0 else ''}"
                          f"{p['kernel_launch_calls']:,} kernel launches for {p['n']} tokens (one graph replay per token would launch "
                          "about one): GreedyGPT2 fell back to decoding step by step, so its rows above measure that fallback, not the "
                          f"graph. Why capture failed: {d.get('graph_failed') or 'not recorded by this run'}."]
            L += ['', f"Profile of one {title} call, {p['n']} new tokens: wall {p['wall_s']} s (under the profiler), host self time "
                      f"{p['total_self_cpu_ms']} ms, GPU time {p['total_gpu_ms']} ms, kernel launch calls {p['kernel_launch_calls']}. "
                      'Most host time: ' + '; '.join(f"{o['op']} {o['self_cpu_ms']} ms ({o['calls']})" for o in p['host_ops'][:8]) + '. '
                      'Most GPU time: ' + '; '.join(f"`{o['kernel'][:60]}` {o['gpu_ms']} ms ({o['calls']})" for o in p['gpu_kernels'][:5]) + '.']
        L.append('')
    sc = res.get('static_compiled', {})
    L += ['## Static KV cache + torch.compile (transformers\' own route)', '',
          f"`generate(..., cache_implementation='static')` in a fresh process ({sc.get('dtype')}, {sc.get('n')} new tokens): "
          + ', '.join(f"call {i}: {sc[f'call{i}_s']} s" for i in range(4) if f'call{i}_s' in sc)
          + (f"; {sc['error']}" if 'error' in sc else '') + (f"; {sc['skipped']}" if 'skipped' in sc else '') + '.', '']
    return '\n'.join(L)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', type=Path, default=Path('/tmp/gpu_gpt2'))
    p.add_argument('--smoke', action='store_true')
    p.add_argument('--budget', type=float, default=200)
    p.add_argument('--markdown', type=Path)
    a = p.parse_args(argv)
    if a.markdown:
        (C.RESULTS/'gpt2_gpu.md').write_text(markdown(json.loads(a.markdown.read_text()))); print(C.RESULTS/'gpt2_gpu.md'); return
    res = run(a.out, smoke=a.smoke, budget=a.budget)
    (a.out/'gpt2_gpu.md').write_text(markdown(res))
    print(f"done in {res['total_s']} s: {a.out/'gpu_gpt2.json'}")

if __name__ == '__main__': main()
