"""Smoke tests for the benchmark scripts in bench/: their smallest units run and return the promised structure.

Cheap (a few seconds): the TF-IDF baseline on a small slice, a 4-token generation with a tiny GPT-2, the table
helpers. They never assert on timings.
"""
import importlib.util, sys
from pathlib import Path
import pytest

BENCH = Path(__file__).resolve().parents[1]/'bench'

def _load(name):
    if name in sys.modules: return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH/f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod

@pytest.fixture(scope='module')
def abl(): return _load('ulmfit_ablation')

@pytest.fixture(scope='module')
def gpt(): return _load('gpt2_inference')

@pytest.fixture(scope='module')
def tiny(gpt):
    from nlpbook_ch.gpt2 import tiny_gpt2, load_model, load_tokenizer
    path = tiny_gpt2()
    return load_model(path, device='cpu'), load_tokenizer(path)

def test_scripts_have_quick_flag():
    for name in ('ulmfit_ablation', 'gpt2_inference', 'notebooks', 'classify_throughput', 'cpu_bf16', 'greedy_ops'):
        assert '--quick' in (BENCH/f'{name}.py').read_text(), name
    assert (BENCH/'README.md').exists()

def test_tfidf_baseline_on_a_slice(abl):
    from nlpbook_ch.data import find_data
    src = find_data('imdb')
    first = lambda split: [p for l in abl.LABELS for p in [q for q in abl.labelled_files(src, split) if q[1] == l][:20]]
    train, valid = first('train'), first('test')
    r = abl.tfidf_baseline(train, valid, seed=0)
    assert set(r) >= {'method', 'accuracy', 'seconds', 'n_train', 'n_valid'}
    assert (r['method'], r['n_train'], r['n_valid']) == ('a', 40, 40)
    assert 0 <= r['accuracy'] <= 1 and r['seconds'] >= 0

def test_train_subset_is_balanced(abl):
    keep = abl.train_subset(10)
    assert len(keep) == 10 and sorted(l for _, l in keep) == ['neg'] * 5 + ['pos'] * 5
    assert keep == abl.train_subset(10)   # deterministic
    with pytest.raises(ValueError): abl.train_subset(7)

def test_ablation_summary_and_markdown(abl, tmp_path):
    fake = dict(machine=dict(date='d', total_seconds=1.0, torch_threads=1), seeds=[1, 2], sizes=[50],
                config=dict(arch=dict(emb_sz=64), clf_bs=32, seq_len=72, quick_lr=1e-2, lm_n_per_label=250, lm_n_unsup=500,
                            stages=((-1, 1, 2e-2), (None, 2, 1e-3)), lm_frozen=(1, 1e-2), lm_unfrozen=(2, 3e-3)),
                lm=[dict(seed=1, perplexity=100.0, accuracy=0.2, seconds=3.0, n_texts=1500, valid_loss=4.6)],
                ablation=[dict(method='a', accuracy=a, seconds=1.0, seed=s) for s, a in ((1, .8), (2, .8))] +
                         [dict(method='c', accuracy=a, seconds=2.0, lm_seconds=3.0, seed=s) for s, a in ((1, .6), (2, .7))],
                curve=[dict(method=m, accuracy=.6, seconds=1.0, seed=1, n_labelled=n) for m in 'ac' for n in (50, 1000)])
    rows, curve = abl.summarize(fake)
    assert [r['_m'] for r in rows] == ['a', 'c'] and [r['labelled reviews'] for r in curve] == [50, 1000]
    assert 'best mean validation accuracy is **(a)' in abl.verdict(rows)
    md = abl.markdown(fake, quick=False, cmd='x')
    assert '| method |' in md and 'Sample efficiency' in md
    files = abl.plot(fake, tmp_path)
    assert [f.name for f in files] == ['ulmfit_ablation.png', 'sample_efficiency.png'] and all(f.stat().st_size for f in files)

@pytest.mark.parametrize('method', ['complete', 'cache', 'naive'])
def test_time_generation_tiny(gpt, tiny, method):
    model, tok = tiny
    r = gpt.time_generation(model, tok, 4, batch=1, method=method)
    assert set(r) >= {'method', 'batch', 'n_tokens', 'seconds', 'tokens_per_s', 'peak_rss_mb', 'new_ids'}
    assert (r['method'], r['batch'], r['n_tokens'], len(r['new_ids'])) == (method, 1, 4, 4)
    assert r['tokens_per_s'] > 0 and r['peak_rss_mb'] > 0

def test_naive_and_cached_agree_tiny(gpt, tiny):
    model, tok = tiny
    runs = {m: gpt.time_generation(model, tok, 4, batch=2, method=m) for m in ('cache', 'naive')}
    assert runs['naive']['new_ids'] == runs['cache']['new_ids'] == gpt.time_generation(model, tok, 4, 1, 'complete')['new_ids']
    assert runs['cache']['batch'] == 2
    with pytest.raises(ValueError): gpt.time_generation(model, tok, 4, batch=2, method='complete')

def test_next_token_table_and_summary_tiny(gpt, tiny):
    model, tok = tiny
    ntt = gpt.time_next_token_table(model, tok, repeats=2)
    assert set(ntt) >= {'forward_ms', 'table_ms', 'overhead_ms', 'ratio'} and ntt['rows'] == 10
    bw = gpt.copy_bandwidth(mb=8, repeats=1)
    assert bw['copy_gbps'] > 0
    cases = [gpt.time_generation(model, tok, 2, 1, m) for m in ('cache', 'naive')]
    res = dict(machine=dict(date='d', total_seconds=1.0, model='tiny', torch_threads=1), weight_bytes=gpt.weight_bytes(model), params=gpt.n_params(model),
               rss_before_model_mb=1.0, bandwidth=bw, cases=cases, skipped=[], next_token_table=ntt, memory_method='VmHWM')
    rows = gpt.summarize(res)
    assert len(rows) == 1 and rows[0]['new tokens'] == 2 and rows[0]['cache speed-up'].endswith('x')
    assert '2/2 tokens' in ' '.join(gpt.checks(res))
    assert '## Tokens per second' in gpt.markdown(res, quick=True, cmd='x')

def test_gpt2_small_config(gpt):
    from transformers import GPT2Config
    cfg = GPT2Config(**gpt.GPT2_SMALL)
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.vocab_size) == (12, 768, 12, 50257)

def test_notebooks_listing():
    nbm = _load('notebooks')
    names = [p.name for p in nbm.notebooks()]
    assert '04_ulmfit.ipynb' in names and names == sorted(names)
    assert set(nbm.QUICK_NOTEBOOKS) <= set(names)
    res = dict(machine=dict(date='d', cache='c'), skip_flags=nbm.SKIP_FLAGS,
               notebooks=[dict(notebook='x.ipynb', ok=True, wall_s=2.0, exec_s=1.5)])
    assert '| x.ipynb | ok | 2.0 | 1.5 | 0.5 |' in nbm.markdown(res, 'cmd')

def test_classify_throughput_markdown_and_texts():
    ct = _load('classify_throughput')
    assert len(ct.review_texts(3)) == 3
    with pytest.raises(ValueError): ct.review_texts(5000)
    case = dict(n=1000, tokens=300000, before_s=20.0, after_s=4.0, plain_s=10.0, before_per_s=50.0, after_per_s=250.0, plain_per_s=100.0,
                speedup=5.0, max_prob_diff=1e-7, same_labels=True, plain_max_prob_diff=0.08, plain_same_labels=True)
    res = dict(machine=dict(date='d', cpu='c', usable_cores=2, memory='m', torch='t', fastai='f', torch_threads=1, load_at_start='1',
                            load_at_end='1', total_seconds=1.0),
               model=dict(emb_sz=64, n_hid=128, n_layers=2, vocab=4008, parameters=1, config='SMALL', load_s=0.2), cases=[case])
    md = ct.markdown(res)
    assert '| 1000 | 300,000 | 50.0 | 250.0 | 5.0x | 1.0e-07, True | 20.00 / 4.00 |' in md and '**5.0x**' in md and 'bf16 speed-up' not in md
    case.update(mixed_s=2.0, mixed_per_s=500.0, mixed_speedup=10.0, mixed_max_prob_diff=2e-3, mixed_same_labels=999)
    md = ct.markdown(res)   # with bf16 autocast (a CPU with native bf16): its own columns and sentence
    assert '| 5.0x | 1.0e-07, True | 500.0 | 10.0x | 2.0e-03, 999/1000 | 20.00 / 4.00 / 2.00 |' in md
    assert '**10.0x** (500 reviews/s)' in md and '999 of 1,000 labels the same' in md

def test_gpu_bench_reports_from_their_json():
    "The GPU scripts' markdown is rebuilt from the committed JSON of their H100 run, and says what that run measured."
    import json
    gu, gg = _load('gpu_ulmfit'), _load('gpu_gpt2')
    res = json.loads((BENCH/'results'/'gpu_ulmfit.json').read_text())
    md = gu.markdown(res)
    assert 'NVIDIA H100' in md and '| 512 | stream |' in md and '| 512 | fastai |' in md
    assert gu.memory_fit(res['lm']) == res['lm_memory']
    res2 = json.loads((BENCH/'results'/'gpt2_gpu.json').read_text())
    md2 = gg.markdown(res2)
    assert md2.count('## ') >= 4 and 'bandwidth bound' in md2
    assert md2.count('The CUDA graph was not used in this run') == 3   # that run's GreedyGPT2 profiles had no graph launch
    for d in res2['dtypes'].values(): d['profile_greedy'].update(graph_launches=15)   # a run that counts them, with the graph
    assert 'The CUDA graph was not used' not in gg.markdown(res2)
    for d in res2['dtypes'].values(): d['profile_greedy'].update(graph_launches=0); d['graph_failed'] = 'operation not permitted'
    assert gg.markdown(res2).count('no graph launch and') == 3 and 'Why capture failed: operation not permitted' in gg.markdown(res2)

def test_memory_fit_recovers_a_line():
    gu = _load('gpu_ulmfit')
    rows = [dict(bs=b, loader='stream', peak_gb=1.5 + 0.25 * b) for b in (8, 16, 32)] + [dict(bs=64, loader='fastai', peak_gb=99)]
    assert gu.memory_fit(rows) == dict(gb_per_item=0.25, intercept_gb=1.5, points=3)
    assert gu.memory_fit(rows[:1]) is None

def test_synthetic_docs_cover_the_tokens_asked_for():
    gu = _load('gpu_ulmfit')
    docs = gu.synthetic_docs(5000, vocab=100)
    n = sum(len(d) for d in docs)
    assert 5000 <= n < 5000 + 2500 and all(int(d.min()) >= 8 and int(d.max()) < 100 for d in docs)

def _has_cuda():
    import torch
    return torch.cuda.is_available()

@pytest.mark.skipif(_has_cuda(), reason='bench/cpu_bf16.py measures training on the CPU; with CUDA the learners train in fp16 on the GPU')
def test_cpu_bf16_runs_tiny_and_reports_both_precisions(tmp_path):
    "The TINY smoke run trains each step in fp32 and under CPUMixedPrecision, and its table pairs them with a speed-up."
    cb = _load('cpu_bf16')
    cb.main(['--quick', '--out', str(tmp_path)])
    import json
    res = json.loads((tmp_path/'cpu_bf16_quick.json').read_text())
    assert [(r['step'], r['precision']) for r in res['rows']] == [(s, p) for s in ('classifier fine_tune', 'LM frozen epoch')
                                                                  for p in ('fp32', 'bf16')]
    assert set(res['speedup']) == {'classifier fine_tune', 'LM frozen epoch'} and all(v > 0 for v in res['speedup'].values())
    md = (tmp_path/'cpu_bf16_quick.md').read_text()
    assert 'Preset: TINY' in md and md.count('| bf16 |') == 2 and 'x |' in md

def test_greedy_ops_counts_fewer_operators_per_token_with_the_same_tokens(tmp_path):
    "GreedyGPT2 runs one attention and one GELU operator per layer and token, fewer operators than its eager form, and generate's tokens."
    res = _load('greedy_ops').main(['--quick', '--out', str(tmp_path)])
    (m,) = res['models']
    r = m['routes']
    assert set(r) == {'GreedyGPT2', 'GreedyGPT2, eager attention and GELU', 'generate'}
    assert all(d['same_tokens_as_generate'] for d in r.values()), r
    ours, eager = r['GreedyGPT2'], r['GreedyGPT2, eager attention and GELU']
    assert ours['ops_per_token'] < min(eager['ops_per_token'], r['generate']['ops_per_token']), r
    assert not any(k.split('.')[0] in ('_unsafe_view', 'empty') for d in r.values() for k in d['ops']), r   # no kernel: not counted
    n_layer = 2   # the quick run's GPT-2
    assert ours['ops'].get('gelu.default') == n_layer and 'tanh.default' not in ours['ops'], ours['ops']
    assert sum(v for k, v in ours['ops'].items() if 'scaled_dot_product' in k) == n_layer, ours['ops']
    md = (tmp_path/'greedy_ops_quick.md').read_text()
    assert md.startswith('# Operators per decoded token') and md.count('| random 2-layer GPT-2 (3.4M) |') == 3 and '| 1.00x |' in md
