"""Unit tests for nlpbook_ch.gpt2: offline, CPU, with the real GPT-2 tokenizer and a tiny random GPT-2."""
import os, subprocess, sys, textwrap, time
from pathlib import Path
import pytest
import torch

from nlpbook_ch.gpt2 import (ModelLoadError, ModelNotFoundError, complete, encode_prompt, load_model,
                             load_tokenizer, next_token_table, tiny_gpt2)

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
    "next_token_table checks the length as complete does (issue 14, item 5: it used to die with an IndexError)."
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
        from nlpbook_ch.core import is_online
        from nlpbook_ch.gpt2 import load_model, load_tokenizer, ModelNotFoundError
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
