"""Unit tests for nlpbook_ch.gpt2: offline, CPU, with the real GPT-2 tokenizer, a tiny random GPT-2 and the package's own small GPT-2."""
import json, os, shutil, subprocess, sys, textwrap, time
from pathlib import Path
import pytest
import torch

from nlpbook_ch.gpt2 import (ModelLoadError, ModelNotFoundError, complete, encode_prompt, find_pretrained_gpt2, load_gpt2,
                             load_model, load_tokenizer, next_token_table, pretrained_dirs, tiny_gpt2)

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "With great power comes great "
CHAPTER_IDS = [3152, 1049, 1176, 2058, 1049]


@pytest.fixture(scope='module')
def tokenizer(): return load_tokenizer('gpt2')

@pytest.fixture(scope='module')
def tiny_dir(tmp_path_factory): return tiny_gpt2(tmp_path_factory.mktemp('models')/'tiny')

@pytest.fixture(scope='module')
def model(tiny_dir): return load_model(tiny_dir, device='cpu')

@pytest.fixture
def no_local_data(monkeypatch, tmp_path):
    "Offline, shipped data hidden, NLPBOOK_DATA empty: nothing local to fall back on."
    monkeypatch.setenv('NLPBOOK_SKIP_SHARED', '1')
    monkeypatch.setenv('NLPBOOK_DATA', str(tmp_path))
    monkeypatch.setenv('NLPBOOK_OFFLINE', '1')
    return tmp_path


def test_chapter_ids_through_encode_prompt(tokenizer):
    ids = encode_prompt(tokenizer, PROMPT)
    assert ids.shape == (1, 5) and ids.tolist() == [CHAPTER_IDS]
    assert encode_prompt(tokenizer, PROMPT, return_tensors=None) == CHAPTER_IDS

def test_raw_tokenizer_keeps_the_trailing_space(tokenizer):
    assert tokenizer.encode(PROMPT) == CHAPTER_IDS + [220]
    assert encode_prompt(tokenizer, PROMPT, strip=False, return_tensors=None) == CHAPTER_IDS + [220]
    assert tokenizer.convert_ids_to_tokens(220) == 'Ġ'

def test_decode_round_trip(tokenizer):
    for text in (PROMPT.rstrip(), "Héllo, wörld!  Two  spaces\nand a newline."):
        assert tokenizer.decode(encode_prompt(tokenizer, text)[0]) == text

def test_bad_prompts_fail_before_torch(tokenizer, model):
    for bad in ('', '   \n'):
        with pytest.raises(ValueError, match='prompt is empty'): encode_prompt(tokenizer, bad)
        with pytest.raises(ValueError, match='prompt is empty'): complete(model, tokenizer, bad, n_tokens=2)
        with pytest.raises(ValueError, match='prompt is empty'): next_token_table(model, tokenizer, bad)
    for bad in (None, 42, ['With', 'great'], b'With great'):
        with pytest.raises(TypeError, match='prompt must be a string'): complete(model, tokenizer, bad, n_tokens=2)
    with pytest.raises(ValueError, match='at least 1'): complete(model, tokenizer, PROMPT, n_tokens=0)

def test_logits_shape(tokenizer, model):
    with torch.no_grad(): logits = model(encode_prompt(tokenizer, PROMPT)).logits
    assert logits.shape == (1, 5, 50257) and logits.grad_fn is None
    assert not model.training  # load_model returns the model in eval mode

def test_next_token_table(tokenizer, model):
    t = next_token_table(model, tokenizer, PROMPT, k=10)
    assert list(t.columns) == ['token_id', 'token', 'probability'] and len(t) == 10
    p = t['probability']
    assert p.is_monotonic_decreasing and (p > 0).all() and p.sum() <= 1 + 1e-6
    with torch.no_grad(): last = model(encode_prompt(tokenizer, PROMPT)).logits[0, -1]
    assert t['token_id'][0] == last.argmax().item()
    assert t['token'][0] == tokenizer.decode([t['token_id'][0]])

def test_prompt_longer_than_the_model_is_a_clear_error(tokenizer, model):
    "next_token_table checks the length as complete does (it used to die with an IndexError)."
    long = 'word ' * 1100
    assert len(encode_prompt(tokenizer, long, return_tensors=None)) > model.config.n_positions
    with pytest.raises(ValueError, match=r"prompt \(1100 tokens\) exceeds the model's 1024 positions"): next_token_table(model, tokenizer, long)
    with pytest.raises(ValueError, match="exceeds the model's 1024 positions"): complete(model, tokenizer, long, n_tokens=1)
    assert len(next_token_table(model, tokenizer, 'word ' * 1024, k=2)) == 2   # exactly n_positions tokens still fit

def test_complete_length_and_determinism(tokenizer, model):
    text, new = complete(model, tokenizer, PROMPT, n_tokens=7, return_ids=True)
    assert len(new) == 7 and text == tokenizer.decode(CHAPTER_IDS + new)
    assert complete(model, tokenizer, PROMPT, n_tokens=7) == text
    sampled = [complete(model, tokenizer, PROMPT, n_tokens=7, do_sample=True, temperature=0.9, top_k=20, seed=3, return_ids=True)
               for _ in range(2)]
    assert sampled[0] == sampled[1] and len(sampled[0][1]) == 7

def test_complete_never_stops_early_on_eos(tokenizer, model):
    "Even when end-of-text is by far the likeliest token, exactly n_tokens come out."
    def favour_eos(module, inputs, out):  # a forward hook (run by nn.Module.__call__) that boosts end-of-text
        out = out.clone(); out[..., 50256] += 100.0; return out
    handle = model.lm_head.register_forward_hook(favour_eos)
    try:
        assert next_token_table(model, tokenizer, PROMPT, k=1)['token_id'][0] == 50256
        _, new = complete(model, tokenizer, PROMPT, n_tokens=5, return_ids=True)
        assert len(new) == 5 and 50256 not in new
    finally: handle.remove()
    assert next_token_table(model, tokenizer, PROMPT, k=1)['token_id'][0] != 50256

def test_dropout_train_vs_eval(tokenizer, model):
    ids = encode_prompt(tokenizer, PROMPT)
    def two_passes():
        with torch.no_grad(): return model(ids).logits, model(ids).logits
    try:
        model.train(); a, b = two_passes()
        assert not torch.equal(a, b)
    finally: model.eval()
    a, b = two_passes()
    assert torch.equal(a, b)

def test_tiny_gpt2_is_reused_and_checked(tiny_dir, tmp_path):
    assert tiny_gpt2(tiny_dir) == tiny_dir
    with pytest.raises(FileExistsError): tiny_gpt2(tiny_dir, n_layer=3)
    tok = load_tokenizer(tiny_dir)  # the folder holds the real tokenizer files
    assert tok.encode(PROMPT.rstrip()) == CHAPTER_IDS

def test_bad_names(no_local_data):
    with pytest.raises(ValueError, match='is empty'): load_model('')
    with pytest.raises(TypeError): load_model(None)
    with pytest.raises(TypeError): load_tokenizer(3)
    with pytest.raises(ModelNotFoundError, match='not a hub model name'): load_model(str(no_local_data/'missing'))

def test_corrupt_checkpoint(tiny_dir, tmp_path):
    import shutil
    bad = tmp_path/'bad'
    shutil.copytree(tiny_dir, bad)
    (bad/'model.safetensors').write_bytes((bad/'model.safetensors').read_bytes()[:4096])
    with pytest.raises(ModelLoadError, match='exists but could not be loaded'): load_model(bad)
    (bad/'model.safetensors').unlink()
    with pytest.raises(ModelLoadError, match='exists but could not be loaded'): load_model(bad)

def test_half_precision_on_cpu_falls_back(tiny_dir):
    with pytest.warns(UserWarning, match='meant for CUDA'): m = load_model(tiny_dir, device='cpu', dtype='fp16')
    assert m.dtype == torch.float32

def test_load_model_offline_fails_fast(no_local_data):
    t0 = time.time()
    with pytest.raises(ModelNotFoundError) as e: load_model('gpt2', cache_dir=no_local_data)
    assert time.time() - t0 < 10
    msg = str(e.value)
    assert 'Hugging Face cache' in msg and 'skipped' in msg and 'save_pretrained' in msg
    assert isinstance(e.value, FileNotFoundError)

def test_empty_cache_gives_an_error_not_an_empty_tokenizer(no_local_data, monkeypatch):
    from transformers import GPT2Tokenizer
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    # the trap being guarded against: transformers itself returns an empty tokenizer here
    assert GPT2Tokenizer.from_pretrained('gpt2', cache_dir=no_local_data, local_files_only=True).vocab_size == 0
    with pytest.raises(ModelNotFoundError, match='tokenizer it gives is empty'):
        load_tokenizer('gpt2', cls=GPT2Tokenizer, cache_dir=no_local_data)
    with pytest.raises(ModelNotFoundError, match="package's data folders: not found"):
        load_tokenizer('gpt2', cache_dir=no_local_data)

def test_fails_fast_without_offline_switches(tmp_path):
    "A fresh process with no offline variable set: the real connectivity check must find out there is no network."
    env = {k: v for k, v in os.environ.items() if k not in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE', 'NLPBOOK_OFFLINE')}
    env.update(HF_HOME=str(tmp_path/'hf'), NLPBOOK_SKIP_SHARED='1', NLPBOOK_DATA=str(tmp_path), PYTHONPATH=str(ROOT))
    code = textwrap.dedent("""
        import time
        import torch; from transformers import AutoModelForCausalLM, AutoTokenizer   # imported before the clock starts: a loaded
        from nlpbook_ch.core import is_online                                        # machine imports slowly, and what is timed
        from nlpbook_ch.gpt2 import load_model, load_tokenizer, ModelNotFoundError   # is how soon a load gives up offline
        if is_online(): print('ONLINE'); raise SystemExit(0)
        for f in (load_model, load_tokenizer):
            t0 = time.time()
            try: f('gpt2')
            except ModelNotFoundError as e: assert 'not reachable' in str(e), str(e)
            else: raise AssertionError('no error')
            print(f.__name__, round(time.time() - t0, 2))
    """)
    r = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    if 'ONLINE' in r.stdout: pytest.skip('this machine can reach huggingface.co')
    secs = dict(l.split() for l in r.stdout.split('\n') if l.startswith('load_'))
    assert set(secs) == {'load_model', 'load_tokenizer'} and all(float(s) < 10 for s in secs.values()), r.stdout


# ---------------------------------------------------------------- the package's own small GPT-2
from nlpbook_ch.models import package_pretrained_dir
SHIPPED = package_pretrained_dir()/'gpt2_imdb_small'   # shipped inside the package (nlpbook_ch/pretrained/)
EXE = [shutil.which('nlpbook-ch')] if shutil.which('nlpbook-ch') else [sys.executable, '-m', 'nlpbook_ch.cli']

@pytest.fixture
def no_pretrained_env(monkeypatch):
    monkeypatch.delenv('NLPBOOK_PRETRAINED', raising=False)

@pytest.fixture(scope='module')
def small(): return load_model(find_pretrained_gpt2(), device='cpu')

def test_shipped_model_is_found_in_the_package(no_pretrained_env):
    assert package_pretrained_dir() in pretrained_dirs()
    assert find_pretrained_gpt2() == SHIPPED == find_pretrained_gpt2('gpt2-imdb-small')
    with pytest.raises(ValueError, match="the package has 'gpt2-imdb-small'"): find_pretrained_gpt2('gpt2-imdb-huge')

def test_nlpbook_pretrained_replaces_the_repository_folder(monkeypatch, tmp_path):
    monkeypatch.setenv('NLPBOOK_PRETRAINED', str(tmp_path))
    assert pretrained_dirs() == [tmp_path]
    with pytest.raises(ModelNotFoundError, match='NLPBOOK_PRETRAINED is set, so only it was searched') as e: find_pretrained_gpt2()
    assert str(tmp_path/'gpt2_imdb_small') in str(e.value)
    shutil.copytree(SHIPPED, tmp_path/'gpt2_imdb_small')
    assert find_pretrained_gpt2() == tmp_path/'gpt2_imdb_small'
    (tmp_path/'gpt2_imdb_small'/'model.safetensors').unlink()   # a config and no weights: found, then reported broken
    with pytest.raises(ModelLoadError, match='exists but could not be loaded'): load_model('gpt2-imdb-small')
    monkeypatch.setenv('NLPBOOK_PRETRAINED', '')
    with pytest.raises(ValueError, match='set but empty'): pretrained_dirs()

def test_shipped_model_loads_like_a_local_folder(small, no_pretrained_env):
    from transformers import GPT2LMHeadModel, GPT2Tokenizer
    assert (small.config.n_embd, small.config.n_layer, small.config.vocab_size) == (128, 6, 50257)
    assert small.dtype == torch.float32 and not small.training          # load_model: float32 on the CPU, eval mode
    tok = load_tokenizer('gpt2-imdb-small')
    assert tok.encode(PROMPT) == CHAPTER_IDS + [220] and encode_prompt(tok, PROMPT).tolist() == [CHAPTER_IDS]
    literal = GPT2LMHeadModel.from_pretrained(SHIPPED).eval()           # the chapter's call: transformers keeps float16
    assert literal.dtype == torch.float16
    ids = GPT2Tokenizer.from_pretrained(SHIPPED).encode(PROMPT.rstrip(), return_tensors='pt')
    with torch.no_grad(): a, b = literal(ids).logits.float(), small(ids).logits
    assert a.shape == b.shape == (1, 5, 50257)
    assert a[0, -1].argmax() == b[0, -1].argmax() and (a - b).abs().max() < 0.05
    assert next_token_table(small, tok, PROMPT, k=1)['token_id'][0] == b[0, -1].argmax().item()

def test_shipped_model_has_learned_reviews(small):
    tok = load_tokenizer(SHIPPED)
    assert next_token_table(small, tok, 'The worst movie I have ever', k=1)['token'][0] in {' seen', ' watched', ' had', ' sat'}
    assert next_token_table(small, tok, 'I would give it a', k=1)['token'][0] in {f' {i}' for i in range(11)}
    card = json.loads((SHIPPED/'model_card.json').read_text())
    assert card['valid_perplexity'] < card['baselines']['unigram'] / 10

def test_load_gpt2_answers_with_the_shipped_model_offline(no_local_data, no_pretrained_env):
    tok, m, which = load_gpt2('gpt2', device='cpu', cache_dir=no_local_data)
    assert which.startswith('gpt2-imdb-small (7,688,320 parameters)') and str(SHIPPED) in which and "'gpt2'" in which
    assert m.config.n_embd == 128 and tok.encode(PROMPT.rstrip()) == CHAPTER_IDS
    with pytest.raises(ModelNotFoundError, match="Could not load the model 'gpt2'"):   # no stand-in when none is wanted
        load_gpt2('gpt2', cache_dir=no_local_data, fallback=None)
    with pytest.raises(ModelNotFoundError, match="'distilgpt2'"): load_gpt2('distilgpt2', cache_dir=no_local_data)
    _, m2, which2 = load_gpt2(SHIPPED, device='cpu')
    assert which2 == f'{SHIPPED} (7,688,320 parameters)'

def test_load_gpt2_says_when_both_are_missing(no_local_data, monkeypatch):
    monkeypatch.setenv('NLPBOOK_PRETRAINED', str(no_local_data))
    with pytest.raises(ModelNotFoundError) as e: load_gpt2('gpt2', cache_dir=no_local_data)
    msg = str(e.value)
    assert "Could not load the model 'gpt2'" in msg and "is missing too" in msg and 'NLPBOOK_PRETRAINED is set' in msg

def _next_token_cli(tmp_path, *args, **env):
    e = {k: v for k, v in os.environ.items() if k != 'NLPBOOK_PRETRAINED'}
    e.update(OMP_NUM_THREADS='1', NLPBOOK_OFFLINE='1', HF_HUB_OFFLINE='1', HF_HOME=str(tmp_path/'hf'), PYTHONPATH=str(ROOT), **env)
    return subprocess.run([*EXE, 'next-token', *map(str, args)], capture_output=True, text=True, env=e, cwd=tmp_path, timeout=300)

def test_cli_next_token_offline_names_the_model_that_answered(tmp_path):
    r = _next_token_cli(tmp_path, 'The worst movie I have ever', '-k', '3')
    assert r.returncode == 0, r.stderr[-2000:]
    assert "nlpbook-ch: model: gpt2-imdb-small (7,688,320 parameters), the package's small GPT-2" in r.stderr
    rows = r.stdout.strip().splitlines()
    assert len(rows) == 4 and rows[0].split() == ['token_id', 'token', 'probability'] and rows[1].split()[:2] == ['1775', 'seen']
    r = _next_token_cli(tmp_path, 'The acting was', '--model', 'gpt2-imdb-small', '-k', '2')
    assert r.returncode == 0 and 'nlpbook-ch: model: gpt2-imdb-small (7,688,320 parameters)\n' in r.stderr, r.stderr[-2000:]

def test_cli_next_token_without_any_model_is_a_clear_error(tmp_path):
    r = _next_token_cli(tmp_path, 'Hello', NLPBOOK_PRETRAINED=str(tmp_path/'none'))
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-2000:]
    err = [l for l in r.stderr.splitlines() if l.startswith('nlpbook-ch: error:')]
    assert len(err) == 1 and "'gpt2'" in err[0] and 'NLPBOOK_PRETRAINED' in r.stderr, r.stderr   # details follow, indented

def test_bench_runs_on_a_model_folder(tmp_path):
    "bench/gpt2_inference.py --model DIR: the shipped model, its own tokenizer, results named after the folder."
    import importlib.util
    spec = importlib.util.spec_from_file_location('gpt2_inference', ROOT/'bench'/'gpt2_inference.py')
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    res = bench.main(['--model', str(SHIPPED), '--smoke', '--lengths', '3', '--no-probe', '--out', str(tmp_path)])
    assert res['params'] == 7_688_320 and res['thread_probe'] == [] and res['model_dir'] == str(SHIPPED)
    assert {(c['method'], c['batch']) for c in res['cases']} == {('complete', 1), ('cache', 1), ('naive', 1), ('cache', 8), ('naive', 8)}
    assert all(len(c['new_ids']) == 3 for c in res['cases']) and all(c.endswith('3/3 tokens') for c in bench.checks(res))
    md = (tmp_path/'gpt2_inference_gpt2_imdb_small_smoke.md').read_text()
    assert md.startswith('# gpt2_imdb_small inference on CPU') and 'the tokenizer saved in its folder' in md
    with pytest.raises(SystemExit): bench.main(['--model', str(tmp_path), '--smoke'])   # not a model folder

def test_naive_loop_never_chooses_end_of_text(tokenizer, model):
    "As generate with min_new_tokens = max_new_tokens, so that the bench compares like with like."
    import importlib.util
    spec = importlib.util.spec_from_file_location('gpt2_inference', ROOT/'bench'/'gpt2_inference.py')
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    def favour_eos(module, inputs, out):
        out = out.clone(); out[..., 50256] += 100.0; return out
    handle = model.lm_head.register_forward_hook(favour_eos)
    try:
        ids = encode_prompt(tokenizer, PROMPT)
        assert 50256 in bench.naive_generate(model, ids, 3)[0, 5:].tolist()
        new = bench.naive_generate(model, ids, 3, eos_id=50256)[0, 5:].tolist()
        assert 50256 not in new and new == bench.cached_generate(model, ids, 3, 50256)[0, 5:].tolist()
    finally: handle.remove()


# ---------------------------------------------------------------- GreedyGPT2 shared by threads
@pytest.fixture(scope='module')
def rand_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4)).eval()

class _ThenLock:
    "A lock that, right after its first release, runs `then()`: what another thread waiting for the lock would do next."
    def __init__(self, then): self.lock, self.then = __import__('threading').Lock(), then
    def __enter__(self): self.lock.acquire()
    def __exit__(self, *exc):
        self.lock.release()
        if self.then: f, self.then = self.then, None; f()

def test_greedy_decoder_returns_its_tokens_before_the_next_call_starts(rand_gpt2):
    """The tokens a call returns are copied while it holds the decoder's lock. They were copied after it: a thread waiting
    for the lock overwrote them (05_gpt2's thread cell failed so, sequences differing at their first token)."""
    from nlpbook_ch.gpt2 import GreedyGPT2
    eos = [rand_gpt2.config.eos_token_id]
    a, b = torch.tensor([[11, 22, 33, 44, 55, 66, 77, 88]]), torch.tensor([[5, 6, 7]])
    want_a, want_b = (GreedyGPT2(rand_gpt2, 1, 64, eos_id=eos)(x, 20) for x in (a, b))
    assert want_a[0, 0] != want_b[0, 0]   # else an overwritten first token would go unnoticed
    d = GreedyGPT2(rand_gpt2, 1, 64, eos_id=eos)
    got_b = []
    d.lock = _ThenLock(lambda: got_b.append(d(b, 20)))   # b's call runs as soon as a's releases the lock
    got_a = d(a, 20)
    assert torch.equal(got_a, want_a) and torch.equal(got_b[0], want_b)

def test_threads_asking_at_once_get_one_decoder(rand_gpt2, monkeypatch):
    "_greedy_decoder makes one decoder per key even when threads ask at the same moment (each made its own before)."
    import threading
    from concurrent.futures import ThreadPoolExecutor
    import nlpbook_ch.gpt2 as g
    class Slow(g.GreedyGPT2):
        def __init__(self, *a, **k): time.sleep(0.3); super().__init__(*a, **k)   # the others ask while the first is made
    monkeypatch.setattr(g, 'GreedyGPT2', Slow)
    g._DECODERS.pop(rand_gpt2, None)
    start = threading.Barrier(4)
    def ask(_): start.wait(); return g._greedy_decoder(rand_gpt2, 1, 50, [50256])
    with ThreadPoolExecutor(4) as ex: ds = list(ex.map(ask, range(4)))
    assert len({id(d) for d in ds}) == 1 and len(g._DECODERS[rand_gpt2]) == 1

def test_threads_share_decoders_and_get_one_threads_tokens(rand_gpt2):
    "05_gpt2's thread cell, repeated: 8 prompts from 4 threads give the tokens of one thread."
    from concurrent.futures import ThreadPoolExecutor
    from nlpbook_ch.gpt2 import _greedy_decoder
    y = torch.randint(0, 50257, (1, 40), generator=torch.Generator().manual_seed(0))
    xs = [y[:, :t] for t in (3, 5, 8, 13, 4, 6, 9, 11)]
    run = lambda x: _greedy_decoder(rand_gpt2, 1, 40, [50256])(x, 20)
    one = [run(x) for x in xs]
    for _ in range(5):
        with ThreadPoolExecutor(4) as ex: assert all(torch.equal(m, o) for m, o in zip(ex.map(run, xs), one))

def test_attention_without_cudnn_is_kept_until_the_last_thread_leaves():
    """torch's sdpa_kernel sets process-wide flags: a thread leaving restored cuDNN under another still inside, and the last
    one out left it off for good. The flags exist without a GPU, so a CUDA device object is enough to test them."""
    from nlpbook_ch.gpt2 import _sdpa_without_cudnn
    cuda, cudnn_on = torch.device('cuda'), torch.backends.cuda.cudnn_sdp_enabled
    before = cudnn_on()
    try:
        for initially in (True, False):
            torch.backends.cuda.enable_cudnn_sdp(initially)
            a, b = _sdpa_without_cudnn(cuda), _sdpa_without_cudnn(cuda)
            a.__enter__(); b.__enter__()                    # two threads inside
            assert not cudnn_on()
            a.__exit__(None, None, None)                    # the first leaves, the second still computes
            assert not cudnn_on()
            b.__exit__(None, None, None)
            assert cudnn_on() == initially                  # as before the first came in
        with _sdpa_without_cudnn(torch.device('cpu')): assert cudnn_on() == initially   # the CPU's attention is left alone
    finally: torch.backends.cuda.enable_cudnn_sdp(before)

def test_encode_prompt_without_a_tokenizer_is_a_clear_error(tokenizer):
    "encode_prompt(None, 'x') raised AttributeError: 'NoneType' object has no attribute 'encode'; swapped arguments, a str one."
    for bad in (None, 42, PROMPT):
        with pytest.raises(TypeError, match=r"tokenizer must be a tokenizer \(e.g. load_tokenizer\('gpt2'\)\), the first argument"):
            encode_prompt(bad, 'x')
    with pytest.raises(TypeError, match='got str'): encode_prompt(PROMPT, tokenizer)
