"""Messages a user meets on the command line: a closed pipe, a model of another kind, a bad mode (subprocesses)."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXE = [shutil.which('nlpbook-ch')] if shutil.which('nlpbook-ch') else [sys.executable, '-m', 'nlpbook_ch.cli']

def cli(*args, env=None, timeout=300):
    return subprocess.run([*EXE, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env=dict(os.environ, OMP_NUM_THREADS='1', **(env or {})))

def one_line(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    lines = [l for l in r.stderr.splitlines() if l.startswith('nlpbook-ch: error:')]
    assert len(lines) == 1 and 'Traceback' not in r.stderr, r.stderr
    for n in needles: assert n in lines[0], lines[0]
    assert 'delete' not in lines[0]                     # never advise deleting a model

def test_models_of_another_kind_say_what_they_are_and_which_command_takes_them(tmp_path):
    from nlpbook_ch.models import find_pretrained, find_pretrained_gpt2
    awd, gpt2 = find_pretrained(), find_pretrained_gpt2()
    run = tmp_path/'run'; run.mkdir(); (run/'state.json').write_text('{}')
    one_line(cli('next-token', 'This movie was', '--model', run), 'is a ULMFiT run', 'nlpbook-ch classify --model')
    one_line(cli('next-token', 'This movie was', '--model', awd), 'is a pretrained AWD-LSTM', 'nlpbook-ch ulmfit')
    one_line(cli('generate', 'The film', '--model', gpt2), 'is a Hugging Face model', 'nlpbook-ch next-token --model')
    one_line(cli('classify', 'Nice', '--model', gpt2), 'is a Hugging Face model', 'nlpbook-ch next-token --model')

def test_a_bad_mode_is_blamed_not_the_config_file(tmp_path):
    (tmp_path/'tiny.json').write_text(json.dumps({'lm_bs': 16}))
    r = cli('ulmfit', '--config', tmp_path/'tiny.json', '--out', tmp_path/'run', env=dict(NLPBOOK_MODE='turbo'))
    one_line(r, 'turbo')
    assert 'tiny.json' not in r.stderr and not (tmp_path/'run').exists()

def test_a_closed_pipe_ends_quietly(tmp_path):
    "`nlpbook-ch ... | head -1`: once the reader has gone, the command stops without an error message."
    p = subprocess.Popen(f"{' '.join(EXE)} next-token 'This movie was' -k 50 | head -1", shell=True, cwd=ROOT, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, OMP_NUM_THREADS='1'))
    out, err = p.communicate(timeout=300)
    assert out.strip() and 'Broken pipe' not in err and 'Traceback' not in err and 'error' not in err, err
