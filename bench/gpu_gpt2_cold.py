#!/usr/bin/env python
"""GPT-2 small on a CUDA GPU, each case in a fresh process: the first `generate` call's seconds in float16 with PyTorch's
default SDPA backends and with cuDNN attention left out, and `GreedyGPT2` (CUDA graph) tokens/s per dtype with the
tokens compared to `generate`'s (issue 11, item 3: why 16-bit decoding looked slow, and the graph decoder's speed).

    python bench/gpu_gpt2_cold.py --out DIR [--smoke]
"""
import argparse, json, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

CASE = r'''
import json, sys, time, warnings, torch
sys.path.insert(0, sys.argv[1])
from gpt2_inference import gpt2_small, load_gpt2_tokenizer, PROMPT
from nlpbook_ch.gpt2 import encode_prompt, GreedyGPT2, complete, _eos_ids
kind, dtype, n, smoke = sys.argv[2], getattr(torch, sys.argv[3]), int(sys.argv[4]), sys.argv[5] == '1'
dev = 'cuda' if torch.cuda.is_available() else 'cpu'
tok = load_gpt2_tokenizer()
m = (gpt2_small(n_layer=2, n_embd=64, n_head=2) if smoke else gpt2_small()).to(dev, dtype).eval()
ids = encode_prompt(tok, PROMPT).to(dev)
from _common import sync
def gen():
    with torch.no_grad():
        return m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                          pad_token_id=tok.eos_token_id)[0, ids.shape[1]:].tolist()
res = dict(kind=kind, dtype=sys.argv[3], n=n)
with torch.no_grad(): m(ids); sync()      # CUDA context, cuBLAS and the prompt's shapes: out of the timings below
if kind in ('generate_default', 'generate_no_cudnn'):
    from torch.nn.attention import sdpa_kernel, SDPBackend
    ctx = sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]) if kind == 'generate_no_cudnn' else __import__('contextlib').nullcontext()
    with ctx:
        for i in range(3):
            sync(); t0 = time.perf_counter(); out = gen(); sync(); res[f'call{i}_s'] = round(time.perf_counter() - t0, 3)
else:
    ref = gen()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        for i in range(3):
            sync(); t0 = time.perf_counter()
            out = GreedyGPT2(m, 1, ids.shape[1] + n, eos_id=_eos_ids(m, tok))(ids, n)[0].tolist()
            sync(); res[f'call{i}_s'] = round(time.perf_counter() - t0, 4)
        b = 32; x = ids.repeat(b, 1)
        sync(); t0 = time.perf_counter(); o32 = GreedyGPT2(m, b, ids.shape[1] + n, eos_id=_eos_ids(m, tok))(x, n); sync()
        res['batch32_s'] = round(time.perf_counter() - t0, 4)
        for k in ('complete_s', 'complete_warm_s'):   # the first captures the graph of the decoder complete keeps, the second replays it
            sync(); t0 = time.perf_counter(); c = complete(m, tok, PROMPT, n, return_ids=True)[1]; sync()
            res[k] = round(time.perf_counter() - t0, 4)
    res['graph_failed'] = GreedyGPT2.graph_failed
    res['warnings'] = [str(x.message)[:300] for x in w]
    res['same_tokens_as_generate'] = out == ref
    res['agree_prefix'] = next((i for i, (a, b_) in enumerate(zip(out, ref)) if a != b_), len(ref))
    res['complete_same'] = c == ref
    res['batch32_rows_same'] = all(r == ref for r in o32.tolist())
print('RESULT=' + json.dumps(res), flush=True)
'''

def case(kind, dtype, n, smoke, timeout=90) -> dict:
    t0 = time.time()
    try:
        p = subprocess.run([sys.executable, '-c', CASE, str(C.BENCH), kind, dtype, str(n), '1' if smoke else '0'],
                           capture_output=True, text=True, timeout=timeout)
        line = next((l for l in p.stdout.splitlines() if l.startswith('RESULT=')), None)
        res = json.loads(line[7:]) if line else dict(kind=kind, dtype=dtype, error=(p.stderr.strip().splitlines() or ['exit %d' % p.returncode])[-1][:300])
    except subprocess.TimeoutExpired: res = dict(kind=kind, dtype=dtype, error=f'stopped after {timeout} s')
    res['process_s'] = round(time.time() - t0, 1)
    for k in ('call0_s', 'call1_s', 'call2_s'):
        if k in res: res[k.replace('_s', '_tok_s')] = round(n / res[k], 1)
    if 'batch32_s' in res: res['batch32_tok_s'] = round(32 * n / res['batch32_s'], 1)
    for k in ('complete_s', 'complete_warm_s'):
        if k in res: res[k.replace('_s', '_tok_s')] = round(n / res[k], 1)
    print(json.dumps(res), flush=True)
    return res

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', type=Path, default=Path('/tmp/gpu_gpt2_cold'))
    p.add_argument('--smoke', action='store_true')
    a = p.parse_args(argv)
    n = 8 if a.smoke else 128
    res = dict(machine=C.machine_info(), n=n, smoke=a.smoke, cases=[])
    a.out.mkdir(parents=True, exist_ok=True)
    for kind, dt in (('generate_default', 'float16'), ('generate_no_cudnn', 'float16'), ('generate_default', 'bfloat16'),
                     ('greedy', 'float32'), ('greedy', 'bfloat16'), ('greedy', 'float16')):
        res['cases'].append(case(kind, dt, n, a.smoke))
        (a.out/'gpu_gpt2_cold.json').write_text(json.dumps(res, indent=1))

if __name__ == '__main__': main()
