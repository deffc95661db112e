"""nlpbook_ch.scale: the data-parallel ULMFiT run with two CPU processes (torchrun, gloo) on a 40-review slice,
and GPT inference with device_map='auto' on the tiny GPT-2."""
import json, math, os, subprocess, sys, time
from pathlib import Path
import pytest, torch
from nlpbook_ch.data import imdb_workdir
from nlpbook_ch import ulmfit as U, scale as S

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(arch=dict(emb_sz=16, n_hid=32, n_layers=2), pretrained=False, max_vocab=600, lm_bs=32, lm_seq_len=24, clf_bs=8,
            lm_frozen=[1, 2e-2], lm_unfrozen=[1, 1e-2], stages=[[-1, 1, 2e-2], [None, 1, 1e-3]])

@pytest.fixture(scope='module')
def two_procs(tmp_path_factory):
    "Run `torchrun --nproc_per_node 2 -m nlpbook_ch.scale` on a fresh 40-review slice; the data is tokenised by rank 0 inside the run."
    tmp = tmp_path_factory.mktemp('scale')
    path = imdb_workdir(n_per_label=10, n_unsup=20, dest=tmp/'imdb')
    out = tmp/'out'
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    logs = tmp/'logs'   # each rank's stdout also goes to its own file: lines of two processes sharing one pipe can interleave
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '--log-dir', str(logs), '--tee', '1',
           '-m', 'nlpbook_ch.scale', '--mode', 'quick', '--path', str(path), '--out', str(out), '--lr-rule', 'linear',
           '--config', json.dumps(TINY)]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp)
    secs = time.time() - t0
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stdout[-4000:]}\n{p.stderr[-6000:]}"
    sums = sorted((json.loads(l.split(' ', 1)[1]) for f in logs.rglob('stdout.log')
                   for l in f.read_text().splitlines() if l.startswith('SCALE_SUMMARY ')), key=lambda s: s['rank'])
    print(f'\ntwo-process run: {secs:.1f}s')
    return dict(path=path, out=out, sums=sums, secs=secs)

def test_both_ranks_trained_in_step(two_procs):
    r0, r1 = two_procs['sums']
    assert [r0['rank'], r1['rank']] == [0, 1] and r0['world_size'] == r1['world_size'] == 2
    assert r0['backend'] == 'gloo'
    assert r0['global_bs'] == dict(lm=64, clf=16) and r0['per_device_bs'] == dict(lm=32, clf=8)
    # each rank ran its half of every epoch's batches (fastai's DistributedDL rounds up) ...
    cfg = U.ulmfit_config('quick', **TINY)
    dls_lm = U.lm_dataloaders(two_procs['path'], cfg)
    dls = U.clf_dataloaders(two_procs['path'], cfg, text_vocab=dls_lm.vocab)
    half = lambda n: math.ceil(n / 2)
    per_rank = 2 * half(len(dls_lm.train)) + 2 * half(len(dls.train))
    for d in ('fwd', 'bwd'):
        assert r0[f'{d}_train_batches'] == r1[f'{d}_train_batches'] == per_rank
        # ... and gradients were averaged: both ended with the same parameters
        assert r0[f'{d}_checksum'] == r1[f'{d}_checksum']

def test_only_rank0_wrote(two_procs):
    r0, r1 = two_procs['sums']
    out = two_procs['out']
    assert r1['written'] == [] and 'out' not in r1
    expected = {'models/fwd_lm_encoder.pth', 'models/fwd_classifier.pth', 'models/bwd_lm_encoder.pth',
                'models/bwd_classifier.pth', 'report.json', 'valid_probs.pt'}
    assert {str(Path(f).relative_to(out)) for f in r0['written']} == expected
    assert {str(p.relative_to(out)) for p in out.rglob('*') if p.is_file()} == expected   # no temp files, nothing else
    report = json.loads((out/'report.json').read_text())
    assert report['world_size'] == 2 and report['lr_rule'] == 'linear'
    assert report['config']['stages'][0][2] == pytest.approx(2 * 2e-2)   # linear rule: x2 for 2 processes

def test_ensemble_is_mean_of_the_two(two_procs):
    out = two_procs['out']
    saved = torch.load(out/'valid_probs.pt')
    assert saved['fwd'].shape == saved['bwd'].shape == (20, 2)
    assert torch.allclose(saved['ensemble'], (saved['fwd'] + saved['bwd']) / 2)
    acc = json.loads((out/'report.json').read_text())['accuracy']
    assert acc['ensemble (fwd + bwd)'] == pytest.approx(S.accuracy_of(saved['ensemble'], saved['targs']))
    assert acc['bwd'] == pytest.approx(S.accuracy_of(saved['bwd'], saved['targs']))

def test_lr_rules_and_bad_args():
    assert S.scale_lr(1e-3, 8, 'linear') == pytest.approx(8e-3)
    with pytest.raises(ValueError, match='Unknown lr rule'): S.scale_lr(1e-3, 2, 'exp')
    with pytest.raises(ValueError, match='direction must be one of'): S.lm_dataloaders_dir('.', U.ulmfit_config('quick'), 'up')
    with pytest.raises(ValueError, match='different targets'):
        S.ensemble_report({'a': (torch.eye(2), torch.tensor([0, 1])), 'b': (torch.eye(2), torch.tensor([1, 1]))})

def test_gpt_device_map_auto(tmp_path):
    "Big-model loading on CPU: with 8 MB of memory allowed the embeddings go to disk; results match the ordinary load."
    from nlpbook_ch.gpt2 import tiny_gpt2, load_model, load_tokenizer, next_token_table, complete, input_device
    folder = tiny_gpt2(tmp_path/'tiny')
    tok = load_tokenizer(folder)
    plain = load_model(folder)
    for kw in (dict(), dict(max_memory={'cpu': '8MB'}, offload_folder=tmp_path/'off')):
        auto = load_model(folder, device_map='auto', **kw)
        assert not auto.training and input_device(auto) == torch.device('cpu')
        prompt = 'With great power comes great'
        assert next_token_table(auto, tok, prompt, k=5).equals(next_token_table(plain, tok, prompt, k=5))
        assert complete(auto, tok, prompt, 4) == complete(plain, tok, prompt, 4)
    assert auto.get_input_embeddings().weight.device.type == 'meta'   # offloaded
    with pytest.raises(ValueError, match='either device or device_map'): load_model(folder, device='cpu', device_map='auto')
