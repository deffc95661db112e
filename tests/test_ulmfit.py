"""Fast checks of nlpbook_ch.ulmfit on a tiny slice of the real IMDB subset (the notebook runs the full quick mode)."""
import math, warnings
from pathlib import Path
import pytest, torch
from fastai.callback.fp16 import MixedPrecision
from nlpbook_ch.data import imdb_workdir
from nlpbook_ch import ulmfit as U

TINY = dict(U.TINY, lm_bs=8, lm_seq_len=24)   # a little more language-model data than the pipeline's TINY

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "A 40-review working copy, its language model (trained one epoch) and the config."
    cfg = U.ulmfit_config('quick', **TINY)
    path = imdb_workdir(n_per_label=10, n_unsup=20, dest=tmp_path_factory.mktemp('imdb')/'imdb')
    U.tokenize_imdb(path)
    dls_lm = U.lm_dataloaders(path, cfg)
    learn = U.make_lm_learner(dls_lm, cfg)
    before = U.lm_metrics(learn)
    learn.fit_one_cycle(3, 2e-2)
    return dict(cfg=cfg, path=path, dls_lm=dls_lm, lm=learn, before=before, after=U.lm_metrics(learn))

def test_lm_perplexity_falls(tiny):
    assert tiny['after']['perplexity'] < 0.5 * tiny['before']['perplexity']
    assert math.isclose(tiny['after']['perplexity'], math.exp(tiny['after']['valid_loss']), rel_tol=1e-3)

def test_tokenize_is_atomic_and_reused(tiny):
    tok = tiny['path'].parent/f"{tiny['path'].name}_tok"
    assert (tok/'counter.pkl').exists()
    assert not [p for p in tok.parent.iterdir() if p.name.endswith('.tmp')]
    assert U.tokenize_imdb(tiny['path']) == tok

def test_generate_returns_prompt_then_n_words(tiny):
    toks = U.generate(tiny['lm'], 'This film was', 7, decode=False, seed=0)[0].split()
    prompt = U.generate(tiny['lm'], 'This film was', 1, decode=False, seed=0)[0].split()[:-1]
    assert len(toks) == len(prompt) + 7 and toks[:len(prompt)] == prompt
    with pytest.raises(TypeError): U.generate(tiny['lm'], None)

def test_checkpoints_atomic_missing_and_corrupt(tiny):
    learn = tiny['lm']
    f = U.save_checkpoint(learn, 'ck')
    assert f.exists() and not list(f.parent.glob('*.tmp'))
    U.load_checkpoint(learn, 'ck')
    with pytest.raises(FileNotFoundError, match='No checkpoint at .*missing.pth'): U.load_checkpoint(learn, 'missing')
    (f.parent/'bad.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(U.CheckpointError, match='bad.pth'): U.load_checkpoint(learn, 'bad')
    with pytest.raises(ValueError): U.save_checkpoint(learn, '')

def test_classifier_on_encoder_predict_and_fp16_path(tiny):
    cfg, learn = tiny['cfg'], tiny['lm']
    U.save_encoder(learn, 'enc')
    dls = U.clf_dataloaders(tiny['path'], cfg, text_vocab=tiny['dls_lm'].vocab)
    clf = U.make_classifier(dls, cfg, path=tiny['path'])
    with pytest.raises(FileNotFoundError, match='No encoder'): U.load_encoder(clf, 'nope')
    (Path(tiny['path'])/'models'/'bad_enc.pth').write_bytes(b'\x00' * 10)
    with pytest.raises(U.CheckpointError, match='bad_enc.pth'): U.load_encoder(clf, 'bad_enc')
    U.load_encoder(clf, 'enc')
    table = U.gradual_unfreeze(clf, cfg.stages, cfg.lr_factor)
    assert list(table.index) == [1, 2] and {'accuracy', 'valid_loss', 'seconds'} <= set(table.columns)
    assert table.loc[2, 'lr_low'] == pytest.approx(1e-3 / 2.6**4)
    label, idx, probs = U.predict_text(clf, 'A fine film.')
    assert label in ('neg', 'pos') and dls.vocab[1][idx] == label
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        clf.to_fp16(); clf.model.half()
    label2, _, probs2 = U.predict_text(clf, 'A fine film.')
    assert not any(isinstance(cb, MixedPrecision) for cb in clf.cbs)
    assert all(p.dtype == torch.float32 for p in clf.model.parameters())
    assert torch.allclose(probs2, probs, atol=1e-2)
    for bad, err in (('', ValueError), ('   ', ValueError), (None, TypeError), (3.5, TypeError)):
        with pytest.raises(err): U.predict_text(clf, bad)
    assert len(U.results_table(clf, n=4)) == 4

def test_full_config_is_the_chapters():
    cfg = U.ulmfit_config('full', cpu=False)   # the chapter's preset (a GPU); FULL_CPU without one
    assert cfg.stages == ((-1, 1, 2e-2), (-2, 1, 1e-2), (-3, 1, 5e-3), (None, 2, 1e-3))
    assert cfg.pretrained and cfg.arch == {} and cfg.lm_unfrozen == (10, 1e-3) and cfg.lr_factor == 2.6**4
    assert cfg.drop_mult == 0.5 and cfg.wd == 0.1

def test_full_mode_offline_starts_from_the_project_model(monkeypatch, tmp_path):
    monkeypatch.setenv('FASTAI_HOME', str(tmp_path))
    monkeypatch.setenv('NLPBOOK_OFFLINE', '1')
    msgs = []
    pre = U.resolve_pretrained(U.ulmfit_config('full', cpu=False), log=msgs.append)
    assert pre.source == 'project' and pre.arch == U.SMALL_AWD_LSTM and (pre.folder/'lm_weights.pth').exists()
    assert 'offline: starting from' in msgs[0] and 'awd_lstm_imdb_small' in msgs[0]
    assert U.want_pretrained(U.ulmfit_config('full', cpu=False)) is False
    assert not (tmp_path/'archive').exists()   # no lock files left behind

def test_pretrained_of_another_size_is_refused():
    with pytest.raises(ValueError, match='an AWD-LSTM of size'): U.resolve_pretrained(U.ulmfit_config('quick', arch=dict(emb_sz=16, n_hid=32, n_layers=2)))

def test_missing_project_model_says_where_it_looked(monkeypatch, tmp_path):
    with pytest.raises(FileNotFoundError, match='NLPBOOK_PRETRAINED'): U.resolve_pretrained(U.ulmfit_config('quick', pretrained_model='nope'))

def test_generate_at_small_temperatures_is_greedy_not_an_error(tiny):
    """fastai's predict raises the probabilities to 1/temperature and samples: at 0.01 (also 1e-3, 1e-300) all of them
    underflowed to 0 and torch.multinomial failed ('invalid multinomial distribution')."""
    learn, prompt = tiny['lm'], 'This film was'
    n_prompt = len(U.generate(learn, prompt, 1, decode=False, seed=0)[0].split()) - 1
    vocab, unk = learn.dls.vocab, learn.dls.vocab.index(U.UNK)
    for t in (0.01, 1e-3, 1e-300):
        toks = U.generate(learn, prompt, 6, temperature=t, decode=False, seed=0)[0].split()
        assert len(toks) == n_prompt + 6
        ids = learn.dls.test_dl([prompt]).items[0]
        for w in toks[n_prompt:]:   # each new token scores within 40 t nats of the best (weight >= e^-40 of the best's): greedy up to ties
            learn.model.reset()
            with learn.no_bar(): p = learn.get_preds(dl=[(ids[None],)])[0][0, -1]
            p[unk] = 0
            assert math.log(p.max()) - math.log(p[vocab.index(w)]) <= 40 * t, (t, w)
            ids = torch.cat([ids, ids.new([vocab.index(w)])])
    for t in (0.75, 0.3):   # where fastai's own sampling works: learn.predict's draws, seed for seed
        U.set_seed(0); want = learn.predict(prompt, 12, temperature=t, no_bar=True)
        assert U.generate(learn, prompt, 12, temperature=t, seed=0)[0] == want

def test_to_fp16_on_a_cpu_does_not_warn_at_every_predict(tiny):
    "fastai's to_fp16() asks for CUDA autocast: without CUDA torch warned at every fit and predict (160 times in one generation cell)."
    learn = tiny['lm']
    if torch.cuda.is_available(): pytest.skip('the warning is about a machine without CUDA')
    learn.to_fp16()
    try:
        with warnings.catch_warnings(record=True) as w:   # (entering it resets the once-per-location registry)
            U.quiet_cpu_autocast()   # what importing the module does (pytest drops filters set while it collects the tests)
            learn.predict('This film was', 3, no_bar=True)
        assert not [x for x in w if 'CUDA is not available' in str(x.message)], [(str(x.message), x.filename) for x in w]
    finally: U.ensure_fp32(learn)
