#!/usr/bin/env python
"""Operators per decoded token: `GreedyGPT2` as shipped, the same decoder with transformers' eager attention and GELU, and `generate`.

At batch 1 on a GPU a GPT-2 decoding step is a few hundred small kernels. Replayed from a CUDA graph they are no longer
launched from Python, but each still takes GPU time: about 1.3 us per elementwise kernel in the H100 profile of
`generate` (`aten::add`, 832 calls in 1.09 ms: bench/results/gpt2_gpu.md), so ~160-290 kernels take the same order of
time as reading GPT-2 small's float32 weights once (0.34 ms at that card's bandwidth bound, 2,978 tokens/s, same file).
Their count is one of the two bounds on decoding speed there. This script counts, on the CPU, the ATen operators per
new token that can launch a kernel (not views, allocations or aliases; on CUDA most launch one, and attention runs
other kernels than on a CPU) for:

- `GreedyGPT2`: the package's decoder (PyTorch's fused attention with an additive mask, GELU in one `F.gelu` call);
- `GreedyGPT2`, eager: the same decoder with the attention and MLP it had before (transformers' eager attention:
  matmul, scale, mask, softmax, matmul; the model's own MLP module, whose GELU is eight elementwise operators);
- `generate`: transformers' `model.generate`, per token after the prompt.

It also times the three at batch 1 on this CPU (median of `--repeats` calls, alternating, 1 thread) and checks that
they give the same tokens. The GPU speed that follows from fewer kernels is not measured here.

    python bench/greedy_ops.py           # GPT-2 small (random weights) and the shipped gpt2-imdb-small, 64 tokens
    python bench/greedy_ops.py --quick   # a 2-layer random GPT-2, 8 tokens: seconds (a smoke run)

Writes bench/results/greedy_ops{.md,.json} (the --quick run: greedy_ops_quick.*).
"""
import argparse, collections, json, statistics, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C   # sets the offline/cache environment defaults before torch and transformers are imported

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

def markdown(res:dict) -> str:
    rows = ['| model | route | ATen operators per new token | vs `GreedyGPT2` | CPU tok/s (batch 1) | same tokens as `generate` |', '|---|---|---|---|---|---|']
    for m in res['models']:
        base = m['routes']['GreedyGPT2']['ops_per_token']
        for r, d in m['routes'].items():
            rows.append(f"| {m['model']} ({m['params'] / 1e6:.1f}M) | {'`' + r + '`' if r in ('GreedyGPT2', 'generate') else r} | "
                        f"{d['ops_per_token']:.1f} | {d['ops_per_token'] / base:.2f}x | {d['tok_s']} | {'yes' if d['same_tokens_as_generate'] else 'no'} |")
    tops = [f"- {m['model']}, {r}: " + ', '.join(f'`{k}` {v:g}' for k, v in list(d['ops'].items())[:8]) for m in res['models'] for r, d in m['routes'].items()]
    return '\n'.join([f"# Operators per decoded token: `GreedyGPT2`, eager, `generate`{' (quick run: a smoke test, not results)' if res['quick'] else ''}", '',
        f"Generated by `python bench/greedy_ops.py{' --quick' if res['quick'] else ''}` on {res['machine']['date']}; whole run {res['seconds']:.0f} s. "
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
        'is for `bench/gpu_gpt2.py` to measure.', '',
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
            f"(`PROMPTS` in the script), on this CPU. Two routes that compute the same function in a different order round "
            'differently; in float32 that rarely changes an argmax, in 16-bit formats more often, and a greedy text that takes '
            'another token once goes on differently. Where a text parts from `generate`\'s, the last column gives how far apart the '
            'model (in that dtype, on the text so far) scores the two tokens, in units of rounding of its largest logit magnitude '
            '(`torch.finfo(dtype).eps` times it): 0 is an exact tie in that dtype; the notebook\'s test accepts up to 4.', '', *rows, '']

def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--quick', action='store_true', help='a 2-layer random GPT-2, 8 new tokens, 1 repeat (seconds)')
    p.add_argument('--tokens', type=int, help='new tokens per call (default 64; --quick 8)')
    p.add_argument('--repeats', type=int, help='timed calls per route (default 5; --quick 1)')
    p.add_argument('--out', type=Path, default=C.RESULTS)
    a = p.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from transformers import GPT2Config, GPT2LMHeadModel
    from nlpbook_ch.core import atomic_path
    from nlpbook_ch.gpt2 import encode_prompt, find_pretrained_gpt2, load_model, load_tokenizer
    t0, n, repeats = time.time(), a.tokens or (8 if a.quick else 64), a.repeats or (1 if a.quick else 5)
    if n < 2: p.error('--tokens must be at least 2')
    folder = find_pretrained_gpt2('gpt2-imdb-small')
    tok = load_tokenizer(folder)
    ids = encode_prompt(tok, 'With great power comes great')
    torch.manual_seed(0)
    if a.quick: models = [('random 2-layer GPT-2', GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4)).eval())]
    else: models = [('GPT-2 small shape, random weights', GPT2LMHeadModel(GPT2Config()).eval()), ('gpt2-imdb-small', load_model(folder).eval())]
    res = dict(quick=a.quick, repeats=repeats, machine=C.machine_info(),
               models=[measure(name, m, ids, n, repeats, tok.eos_token_id) for name, m in models])
    if not a.quick:
        res['agreement_tokens'] = 40
        res['agreement'] = agreement(load_model(folder).eval(), tok, res['agreement_tokens'])
    res['seconds'] = time.time() - t0
    a.out.mkdir(parents=True, exist_ok=True)
    stem = 'greedy_ops_quick' if a.quick else 'greedy_ops'
    for ext, text in (('json', json.dumps(res, indent=1)), ('md', markdown(res))):
        with atomic_path(a.out/f'{stem}.{ext}') as tmp: tmp.write_text(text)
    print(f"wrote {a.out/stem}.md and .json")
    return res

if __name__ == '__main__': main()
