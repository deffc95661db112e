"""The `nlpbook-ch` command, called as a subprocess the way a user calls it.

Most of these reproduce what a hostile but realistic user tried: each failed on the code before its fix.
"""
import ctypes, json, os, resource, shutil, signal, socket, subprocess, sys, time
from pathlib import Path
from types import SimpleNamespace
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXE = [shutil.which('nlpbook-ch')] if shutil.which('nlpbook-ch') else [sys.executable, '-m', 'nlpbook_ch.cli']
from nlpbook_ch.ulmfit import TINY, predict_text

def _args(args): return [a if isinstance(a, bytes) else str(a) for a in args]

def cli(*args, env=None, cwd=ROOT, timeout=300, preexec_fn=None):
    e = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    return subprocess.run([*EXE, *_args(args)], capture_output=True, text=True, env=e, cwd=cwd, timeout=timeout,
                          preexec_fn=preexec_fn)

_DRIVER = """
import contextlib, io, json, sys
from nlpbook_ch.cli import main
res = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = main(argv)
    res.append(dict(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue()))
print('RESULTS=' + json.dumps(res))
"""

def cli_many(*argvs, env=None, cwd=ROOT, timeout=300):
    "Several `nlpbook-ch` command lines run by `main` in one fresh process, so that fastai is imported once, not once each."
    e = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    r = subprocess.run([sys.executable, '-c', _DRIVER, json.dumps([_args(a) for a in argvs])], capture_output=True, text=True,
                       env=e, cwd=cwd, timeout=timeout)
    assert r.returncode == 0 and 'RESULTS=' in r.stdout, r.stderr[-3000:]
    return [SimpleNamespace(**d) for d in json.loads(r.stdout.split('RESULTS=', 1)[1])]

def assert_user_error(r, *needles):
    "Exit status 2, one line on stderr naming the problem (details may follow, indented), no traceback."
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    lines = [l for l in r.stderr.splitlines() if l.startswith('nlpbook-ch: error:')]
    assert len(lines) == 1 and 'Traceback' not in r.stderr, r.stderr
    for n in needles: assert n in lines[0], lines[0]

def _umask022(): os.umask(0o022)

def _dead_pid() -> int:
    p = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
    return int(p.stdout)

def test_data_lists_the_shipped_data():
    r = cli('data')
    assert r.returncode == 0, r.stderr
    for name in ('imdb_subset', 'imdb_sample.csv', 'gpt2_tokenizer', 'unsup 1000', '50257 tokens'): assert name in r.stdout

def test_no_data_offline_is_a_one_line_error(tmp_path):
    env = dict(NLPBOOK_SKIP_SHARED='1', NLPBOOK_DATA=str(tmp_path), FASTAI_HOME=str(tmp_path/'fa'), NLPBOOK_OFFLINE='1')
    assert_user_error(cli('data', env=env), 'not found offline: imdb, imdb_full, imdb_sample, gpt2_tokenizer')
    assert_user_error(cli('ulmfit', '--out', tmp_path/'run', env=env), "Could not find the dataset 'imdb'", 'NLPBOOK_DATA')
    assert not (tmp_path/'run').exists()   # a failed run once left an empty --out folder

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """A tiny ULMFiT job interrupted after its first stage, then resumed, with faults a user met in between:
    a second job started into the same folder while the first holds it, a resume that runs out of disk space
    (a file-size limit) and finds a stale lock left by a killed process, and `lm_vocab.json` deleted before the
    real resume. Every job runs with umask 022 (files were once created 0600)."""
    d = tmp_path_factory.mktemp('cli')
    (d/'tiny.json').write_text(json.dumps(TINY))
    (d/'other.json').write_text(json.dumps({**TINY, 'clf_bs': 4}))
    out = d/'run'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    first = subprocess.Popen([*EXE, *_args(['ulmfit', '--mode', 'quick', '--config', d/'tiny.json', '--out', out, '--stop-after', 'lm_frozen'])],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_umask022)
    def lock_pid():   # the lock is created first and its pid written after: an empty file is not read yet
        try: words = (out/'.lock').read_text().split()
        except FileNotFoundError: return None
        return int(words[0]) if words else None
    t0 = time.time()
    while lock_pid() is None and first.poll() is None and time.time() - t0 < 120: time.sleep(0.02)
    holder = lock_pid()   # (None: a version without the lock)
    if holder: os.kill(holder, signal.SIGSTOP)   # the first job is paused while it holds the folder: no race with its finishing
    try:
        t0 = time.time()
        busy = cli('ulmfit', '--mode', 'quick', '--config', d/'other.json', '--out', out, preexec_fn=_umask022)
        busy_s = time.time() - t0
    finally:
        if holder: os.kill(holder, signal.SIGCONT)
    o, e = first.communicate(timeout=300)
    first = SimpleNamespace(returncode=first.returncode, stdout=o, stderr=e)
    state_after_first = (out/'state.json').read_text()
    (out/'.lock').write_text(f'{_dead_pid()} {socket.gethostname()}\n')   # left by a job that was killed
    def _full_disk():
        _umask022(); resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))
    full = cli('ulmfit', '--mode', 'quick', '--config', d/'tiny.json', '--out', out, '--resume', preexec_fn=_full_disk)
    state_after_full = (out/'state.json').read_text()
    (out/'lm_vocab.json').unlink()
    second = cli('ulmfit', '--mode', 'quick', '--config', d/'tiny.json', '--out', out, '--resume', preexec_fn=_umask022)
    return dict(dir=d, out=out, first=first, second=second, busy=busy, busy_s=busy_s, holder=holder, full=full,
                state_after_first=state_after_first, state_after_full=state_after_full)

def test_ulmfit_interrupted_then_resumed(run):
    first, second = run['first'], run['second']
    assert first.returncode == 0, first.stderr[-3000:]
    assert 'done  lm_frozen [1/4]' in first.stdout and 'continue with `nlpbook-ch ulmfit' in first.stdout
    assert second.returncode == 0, second.stderr[-3000:]
    assert 'skip  lm_frozen (done in an earlier run)' in second.stdout
    assert 'done  lm_frozen' not in second.stdout and 'done  clf_2 [4/4]' in second.stdout
    rep = json.loads((run['out']/'report.json').read_text())
    assert rep['stages'] == ['lm_frozen', 'lm_unfrozen', 'clf_1', 'clf_2'] and rep['complete']
    assert len(rep['stage_accuracy']) == 2 and rep['lm_perplexity'][-1] < rep['lm_perplexity_before']
    assert not list(run['out'].rglob('*.tmp'))

def test_each_run_says_which_data_it_uses(run):
    "the data's path and counts are printed."
    line = next(l for l in run['first'].stdout.splitlines() if l.startswith('data  imdb from'))
    assert 'imdb_subset (train/pos 500, train/neg 500, test/pos 500, test/neg 500, unsup 1000)' in line, line

def test_a_second_run_into_a_busy_folder_stops_at_once(run):
    "two jobs into one --out both reported success and the first one's result was lost."
    assert_user_error(run['busy'], f"is in use by another run (pid {run['holder']})")
    assert 'done ' not in run['busy'].stdout and run['busy_s'] < 60
    state = json.loads(run['state_after_first'])
    assert state['done'] == ['lm_frozen'] and state['config']['clf_bs'] == TINY['clf_bs']   # the first job's own result

def test_full_disk_is_one_line_and_loses_nothing(run):
    "a full disk gave a RuntimeError traceback (inline_container.cc); --resume must still work afterwards."
    assert_user_error(run['full'], f"Could not write the run's files in {run['out']}", '--resume')
    assert run['state_after_full'] == run['state_after_first']   # the finished stage is kept, nothing half-written
    assert run['second'].returncode == 0 and not list(run['out'].rglob('*.tmp'))

def test_stale_lock_and_lost_vocab_do_not_block_resume(run):
    "a killed job's lock is stale; a deleted lm_vocab.json is written again when the LM stage reruns."
    assert run['full'].returncode == 2 and 'in use' not in run['full'].stderr   # it took the stale lock over
    assert (run['out']/'lm_vocab.json').exists() and not (run['out']/'.lock').exists()

def test_output_files_follow_the_umask(run):
    "output files were created with mode 0600 whatever the umask."
    files = [p for p in run['out'].rglob('*') if p.is_file()]
    assert {'classifier.pkl', 'lm.pkl', 'state.json', 'report.json', 'clf_2.pth'} <= {p.name for p in files}
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o644)}

def test_rerun_without_resume_refuses(run):
    assert_user_error(cli('ulmfit', '--config', run['dir']/'tiny.json', '--out', run['out']), 'pass --resume')

def test_bad_config_stops_before_training(tmp_path):
    "stages [] gave a 'complete' run without a classifier, lm_bs 0 a ZeroDivisionError, [[-1, 1]] failed after the LM trained."
    probes = {'{"stages": []}': "'stages' must be a non-empty list", '{"lm_bs": 0}': "'lm_bs' must be a positive integer; got 0",
              '{"stages": [[-1, 1]]}': "'stages' item 1 must be [freeze_to, epochs, lr]",
              '[["lm_bs", 16]]': 'must be a JSON object', '{"lm_bs": "big"}': "'lm_bs' must be a positive integer; got \"big\""}
    argvs = []
    for i, text in enumerate(probes):
        (tmp_path/f'{i}.json').write_text(text)
        argvs.append(['ulmfit', '--config', tmp_path/f'{i}.json', '--out', tmp_path/f'run{i}'])
    for (text, needle), r in zip(probes.items(), cli_many(*argvs)):
        assert_user_error(r, needle)
        assert 'done ' not in r.stdout, text
    assert sorted(p.name for p in tmp_path.iterdir()) == [f'{i}.json' for i in range(len(probes))]   # no --out created

def test_classify_and_generate(run):
    f = run['dir']/'reviews.txt'; f.write_text('Great.\n\nBad.\nFine.\n')
    r, r2, r3 = cli_many(['classify', 'A moving, beautiful film.', 'Awful.', '--model', run['out']],   # one process: fastai imported once
                         ['classify', '--file', f, '--model', run['out'], '--fp32'],   # fp32: no autocast (the library's amp=False)
                         ['generate', 'The movie', '--model', run['out'], '-n', '5', '--seed', '0'])
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [l.split('\t') for l in r.stdout.strip().splitlines()]
    assert len(rows) == 2 and all(l in ('neg', 'pos') and 0.5 <= float(p) <= 1 for l, p, _ in rows)
    assert r2.returncode == 0 and len(r2.stdout.strip().splitlines()) == 3, r2.stderr[-2000:]
    from nlpbook_ch.cli import load_trained   # --fp32 prints learn.predict's own answers (to the 3 printed decimals)
    learn = load_trained(run['out'])
    for (label, p, text), want in zip([l.split('\t') for l in r2.stdout.strip().splitlines()], ['Great.', 'Bad.', 'Fine.']):
        lab, _, probs = predict_text(learn, want)
        assert text == want and label == lab and abs(float(p) - float(probs.max())) <= 5.1e-4, (text, label, p, lab, probs)
    assert r3.returncode == 0 and r3.stdout.lower().startswith('the movie'), r3.stderr[-2000:]

def test_reviews_are_classified_as_given_and_large_files_report_progress(run):
    "text after -- was rewritten, arguments were dropped with --file, a large file was silent."
    reviews = [f'Review {i}: {"a great" if i % 2 else "an awful"} film.' for i in range(600)]
    f = run['dir']/'many.txt'; f.write_text('\n'.join(reviews) + '\n')
    r = cli('classify', 'ARGTEXT', '--file', f, '--model', run['out'], '--', '--well-made-film', '-a')
    assert r.returncode == 0, r.stderr[-2000:]
    assert [l.split('\t')[2] for l in r.stdout.splitlines()] == ['ARGTEXT', '--well-made-film', '-a'] + reviews
    progress = [l for l in r.stderr.splitlines() if l.startswith('nlpbook-ch: classified')]
    assert progress[0].startswith('nlpbook-ch: classified 512/603 reviews (') and progress[-1].startswith('nlpbook-ch: classified 603/603')
    assert_user_error(cli('classify', '-x', '5', 'Nice', '--model', run['out']), 'unrecognized arguments: -x')

def test_generate_rejects_nonsense_at_once(run):
    "-n 100000 ran on for minutes, --samples 0 or -3 printed nothing with exit 0, -t inf was accepted."
    for opts, needle in ((['-n', '100000'], '-n (words to add) must be from 1 to 1000'), (['--samples', '0'], '--samples must be'),
                         (['--samples', '-3'], '--samples must be'), (['-t', 'inf'], '-t (temperature) must be a positive finite'),
                         (['-t', 'nan'], '-t (temperature)')):
        assert_user_error(cli('generate', 'The movie', '--model', run['out'], *opts, timeout=60), needle)

def test_mixed_up_model_files_are_named(run, tmp_path):
    "lm.pkl as classifier.pkl gave 'too many values to unpack', the reverse 'unexpected keyword argument'."
    shutil.copy(run['out']/'lm.pkl', tmp_path/'classifier.pkl'); shutil.copy(run['out']/'classifier.pkl', tmp_path/'lm.pkl')
    clf, lm = cli_many(['classify', 'Nice', '--model', tmp_path], ['generate', 'The', '--model', tmp_path])
    assert_user_error(clf, f"{tmp_path/'classifier.pkl'} holds a language model, not a classifier", '--resume')
    assert_user_error(lm, f"{tmp_path/'lm.pkl'} holds a classifier, not a language model")
    assert_user_error(cli('classify', 'Nice', '--model', run['out']/'classifier.pkl'), 'is a file', f"(here: {run['out']})")

def test_bad_inputs_exit_2_with_the_fix(run, tmp_path):
    assert_user_error(cli('classify', 'Nice', '--model', tmp_path/'missing'), 'does not exist', 'nlpbook-ch ulmfit --out')
    bad = tmp_path/'bad'; bad.mkdir(); (bad/'classifier.pkl').write_bytes(b'not a pickle')
    assert_user_error(cli('classify', 'Nice', '--model', bad), 'is corrupt', 'rerun')
    assert_user_error(cli('classify', '   ', '--model', run['out']), 'empty string')
    assert_user_error(cli('classify', '--file', tmp_path/'nope.txt', '--model', run['out']), 'Cannot read')
    (tmp_path/'latin1.txt').write_bytes('Un film très réussi.'.encode('latin-1'))
    assert_user_error(cli('classify', '--file', tmp_path/'latin1.txt', '--model', run['out']), 'latin1.txt', 'not UTF-8 text (byte 0xe8')
    assert_user_error(cli('classify', b'Tr\xe8s bien', '--model', run['out']), 'argument 2', 'is not UTF-8 text (byte 0xe8')
    assert_user_error(cli('next-token', ''), 'empty')
    r = cli('next-token', 'Hello', '--model', tmp_path/'no_model')
    assert_user_error(r, 'no_model')
    assert f'- local folder {tmp_path/"no_model"}: does not exist' in r.stderr   # the places tried are shown

def test_wrong_data_location_is_an_error_with_its_diagnosis(tmp_path):
    "a wrong NLPBOOK_DATA was silently ignored, the error lost its details, a binary CSV was unnamed."
    assert_user_error(cli('ulmfit', '--out', tmp_path/'run', env=dict(NLPBOOK_DATA=str(tmp_path))), f'in NLPBOOK_DATA={tmp_path}')
    (tmp_path/'a_file').write_text('x')
    assert_user_error(cli('ulmfit', '--out', tmp_path/'run', env=dict(NLPBOOK_DATA=str(tmp_path/'a_file'))), 'is a file')
    (tmp_path/'imdb'/'train'/'pos').mkdir(parents=True)
    (tmp_path/'imdb_sample.csv').write_bytes(bytes(range(256)) * 8)
    r = cli('ulmfit', '--out', tmp_path/'run', env=dict(NLPBOOK_DATA=str(tmp_path)))
    assert_user_error(r, "Could not find the dataset 'imdb'")
    assert f"  - $NLPBOOK_DATA/imdb: {tmp_path/'imdb'}  ({tmp_path/'imdb'} lacks 'train/neg', 'test/pos', 'test/neg'" in r.stderr
    r = cli('data', env=dict(NLPBOOK_DATA=str(tmp_path)))
    assert f"{tmp_path/'imdb_sample.csv'} is not UTF-8 text (byte 0x80" in r.stdout, r.stdout
    assert not (tmp_path/'run').exists()

def _no_dac_override():
    "In the child: drop root's right to write anywhere (CAP_DAC_OVERRIDE), so that file permissions apply as to any user."
    _umask022()
    if os.geteuid() == 0 and ctypes.CDLL(None).prctl(24, 1, 0, 0, 0) != 0: os._exit(99)   # PR_CAPBSET_DROP

def test_read_only_out_and_cache_stop_before_training(run, tmp_path):
    "a read-only --out was found only after a stage had trained."
    ro = tmp_path/'ro'; ro.mkdir(); ro.chmod(0o555)
    r = cli('ulmfit', '--config', run['dir']/'tiny.json', '--out', ro, preexec_fn=_no_dac_override)
    if r.returncode == 99: pytest.skip('running as root without the right to drop CAP_DAC_OVERRIDE: permissions cannot be tested')
    assert_user_error(r, f'--out {ro} is not writable (Permission denied)')
    assert 'done ' not in r.stdout and not list(ro.iterdir())
    r = cli('ulmfit', '--config', run['dir']/'tiny.json', '--out', tmp_path/'run', env=dict(NLPBOOK_CACHE=str(ro/'cache')),
            preexec_fn=_no_dac_override)
    assert_user_error(r, f"The package cache {ro/'cache'} cannot be created (Permission denied)")
    assert not (tmp_path/'run').exists()

def test_ctrl_c_during_tokenisation_is_quiet(tmp_path):
    "worker processes printed KeyboardInterrupt tracebacks on Ctrl-C while tokenising."
    (tmp_path/'c.json').write_text(json.dumps({**TINY, 'n_per_label': 500, 'lm_n_per_label': 500, 'lm_n_unsup': 1000}))
    cache = tmp_path/'cache'
    env = dict(os.environ, OMP_NUM_THREADS='1', NLPBOOK_CACHE=str(cache))
    p = subprocess.Popen([*EXE, 'ulmfit', '--config', str(tmp_path/'c.json'), '--out', str(tmp_path/'run')], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    t0 = time.time()
    while not list(cache.glob('imdb/.*_tok.*.tmp')) and p.poll() is None and time.time() - t0 < 120: time.sleep(0.02)
    time.sleep(0.3)
    os.killpg(p.pid, signal.SIGINT)   # what Ctrl-C in a terminal does: every process of the group gets SIGINT
    o, e = p.communicate(timeout=120)
    assert p.returncode == 130, (p.returncode, e[-3000:])
    assert 'Traceback' not in e and 'KeyboardInterrupt' not in e and e.strip() == 'nlpbook-ch: interrupted', e[-3000:]
    assert not list(cache.rglob('*.tmp')) and not (tmp_path/'run').exists()

def test_debug_shows_the_traceback(tmp_path):
    r = cli('classify', 'Nice', '--model', tmp_path/'missing', '--debug')
    assert r.returncode == 2 and 'Traceback' in r.stderr

def test_next_token_with_a_local_model(tmp_path):
    from nlpbook_ch.gpt2 import tiny_gpt2
    tiny = tiny_gpt2(tmp_path/'tiny')
    r, long = cli_many(['next-token', 'With great power comes great', '--model', tiny, '-k', '3'],
                       ['next-token', 'word ' * 1100, '--model', tiny])   # one process: transformers imported once
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(r.stdout.strip().splitlines()) == 4 and 'probability' in r.stdout
    # a prompt longer than the model's positions died with an IndexError traceback
    assert_user_error(long, "prompt (1100 tokens) exceeds the model's 1024 positions")

def test_a_folder_named_like_the_model_is_not_silently_used(tmp_path):
    "an empty ./gpt2 in the working directory silently replaced the default model 'gpt2'."
    (tmp_path/'gpt2').mkdir()
    assert_user_error(cli('next-token', 'Hello', cwd=tmp_path), 'names the folder ./gpt2 in the working directory', "hub model 'gpt2'")

def test_docs_has_a_page_per_notebook(tmp_path):
    r = cli('docs', '--out', tmp_path/'site')
    assert r.returncode == 0, r.stderr[-2000:]
    nbs = sorted(p.stem for p in (ROOT/'nbs').glob('*.ipynb'))
    pages = {p.stem for p in (tmp_path/'site').glob('*.html')}
    assert pages == set(nbs)
    home = (tmp_path/'site'/'index.html').read_text()
    for n in nbs: assert f'href="{n}.html"' in home
    # a missing --executed folder once silently gave pages from the unexecuted notebooks
    assert_user_error(cli('docs', '--out', tmp_path/'site2', '--executed', tmp_path/'nonexistent'), 'is not a folder')
    assert not (tmp_path/'site2').exists()

def test_chapter_progress_is_not_buried_in_kernel_warnings(tmp_path):
    "each notebook kernel printed ipykernel's 'running over TCP without encryption' warning."
    r = cli('chapter', '--only', 'index', '--out', tmp_path/'ch')
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'running index.ipynb' in r.stdout and 'encryption' not in r.stderr and 'WARNING' not in r.stderr, r.stderr
    assert [p.name for p in (tmp_path/'ch').glob('*.ipynb')] == ['index.ipynb']

def test_chapter_runs_offline_in_quick_mode(tmp_path, nb_flags):
    if 'slow' not in nb_flags: pytest.skip('executes every notebook (minutes): run with --nb-flags slow')
    t0 = time.time()
    r = cli('chapter', '--mode', 'quick', '--out', tmp_path/'ch', timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    assert {p.name for p in (tmp_path/'ch').glob('*.ipynb')} == {p.name for p in (ROOT/'nbs').glob('*.ipynb')}
    figs = json.loads((tmp_path/'ch'/'figures.json').read_text())
    assert len(figs['stage_accuracy']) == 4 and 'gpt2_next_token_completion' in figs
    print(f'chapter: {time.time() - t0:.0f}s')

def test_generate_at_small_temperatures_is_greedy_not_an_error(run):
    "fastai's predict raises the probabilities to 1/t: at -t 0.01 (1e-3, 1e-300) all underflowed to 0 (RuntimeError: invalid multinomial distribution)."
    rs = cli_many(*[['generate', 'The movie', '--model', run['out'], '-n', '5', '--seed', '0', '-t', t] for t in ('0.01', '1e-3', '1e-300')])
    for r in rs: assert r.returncode == 0 and r.stdout.lower().startswith('the movie') and 'multinomial' not in r.stderr, r.stderr[-2000:]
