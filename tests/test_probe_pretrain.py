"""`nlpbook-ch pretrain` given what a user could give it, run as a subprocess the way a user runs it.

Each test reproduces a defect found by probing the command: a resume on another corpus trained on the old tokens and
exited 0; `--max-docs -1` dropped the last review; `--threads -1` was a traceback that left an empty `--out`; a run that
failed at once left files that blocked the next try; `--model gpt2 --size tiny` failed at its default block without naming
`--block`; an `--out` that is a file gave `[Errno 17] File exists`; two runs unpacking one archive into a fresh cache
collided (`Directory not empty`).
"""
import json, os, subprocess, sys, tarfile, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

_DRIVER = """
import contextlib, io, json, sys
from nlpbook_ch.cli import main
from nlpbook_ch.pretrain import pretrain_awd_lstm, pretrain_config
res = []
for step in json.loads(sys.argv[1]):
    if step[0] == 'stop-after-1':   # a library run stopped after its first epoch: a run with a checkpoint, not finished
        out, corpus, epochs = step[1:]
        pretrain_awd_lstm(out, corpus, pretrain_config(size='tiny', epochs=int(epochs), bs=2), stop_after=1, log=lambda *a: None)
        res.append(None); continue
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = main(step)
    res.append(dict(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue()))
print('RESULTS=' + json.dumps(res))
"""

def run_steps(*steps, env=None):
    "`nlpbook-ch` command lines (and 'stop-after-1' library runs) in one fresh process: fastai is imported once, not once each."
    e = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    r = subprocess.run([sys.executable, '-c', _DRIVER, json.dumps([[str(a) for a in s] for s in steps])], capture_output=True,
                       text=True, env=e, cwd=ROOT, timeout=600)
    assert r.returncode == 0 and 'RESULTS=' in r.stdout, r.stderr[-3000:]
    return json.loads(r.stdout.split('RESULTS=', 1)[1])

def assert_user_error(r, *needles):
    "Exit status 2, one line on stderr naming the problem, no traceback."
    assert r['returncode'] == 2, (r['returncode'], r['stdout'][-500:], r['stderr'][-2000:])
    lines = [l for l in r['stderr'].splitlines() if l.startswith('nlpbook-ch: error:')]
    assert len(lines) == 1 and 'Traceback' not in r['stderr'], r['stderr']
    for n in needles: assert n in lines[0], lines[0]

def assert_ok(r): assert r['returncode'] == 0, (r['stdout'][-1000:], r['stderr'][-2000:])

def _corpus(path, *words) -> Path:
    path.write_text(''.join(f'The {w} film was a {w} story, told well and {w}ly.\n' for w in words), encoding='utf-8')
    return path

@pytest.fixture(scope='module')
def probe(tmp_path_factory):
    "Every command line of the two tests below, run in one process; (folder, results by name)."
    d = tmp_path_factory.mktemp('probe')
    a = _corpus(d/'a.txt', 'great', 'dull', 'fine', 'bold', 'slow', 'kind')
    b = _corpus(d/'b.txt', 'odd', 'warm', 'grim', 'cold', 'wild', 'calm')
    one = _corpus(d/'one.txt', 'lonely')
    tiny, tiny2 = (['pretrain', '--size', 'tiny', '--epochs', e, '--bs', '2'] for e in ('1', '2'))
    steps = dict(
        max_docs_neg=[*tiny, '--corpus', a, '--max-docs', '-1', '--out', d/'bad'/'m1'],
        max_docs_0=[*tiny, '--corpus', a, '--max-docs', '0', '--out', d/'bad'/'m0'],
        threads=[*tiny, '--corpus', a, '--threads', '-1', '--out', d/'bad'/'t'],
        out_file=[*tiny, '--corpus', a, '--out', a],
        block=['pretrain', '--model', 'gpt2', '--size', 'tiny', '--block', '200', '--corpus', a, '--out', d/'bad'/'g'],
        gpt2_tiny=['pretrain', '--model', 'gpt2', '--size', 'tiny', '--corpus', a, '--out', d/'bad'/'g2'],
        fail_at_once=[*tiny, '--corpus', one, '--out', d/'r6'], rerun=[*tiny, '--corpus', a, '--out', d/'r6'],
        fail_at_once_b=[*tiny, '--corpus', one, '--out', d/'r6b'], resume_fixed=[*tiny, '--corpus', a, '--out', d/'r6b', '--resume'],
        finished=[*tiny, '--corpus', a, '--out', d/'r3'], finished_other=[*tiny, '--corpus', b, '--out', d/'r3', '--resume'],
        stopped=['stop-after-1', d/'r3b', a, 2],   # a library run with a checkpoint, not finished
        stopped_other=[*tiny2, '--corpus', b, '--out', d/'r3b', '--resume'], stopped_same=[*tiny2, '--corpus', a, '--out', d/'r3b', '--resume'])
    return d, dict(zip(steps, run_steps(*steps.values())))

def test_pretrain_refuses_bad_input_and_leaves_nothing(probe):
    d, r = probe
    for k in ('max_docs_neg', 'max_docs_0'): assert_user_error(r[k], 'max_docs must be a positive int, or None for every document')
    assert_user_error(r['threads'], 'threads must be a positive int')
    assert_user_error(r['out_file'], f"--out {d/'a.txt'} is a file, not a folder")
    assert_user_error(r['block'], '--block 128')   # the tiny GPT-2 has 128 positions
    assert_user_error(r['gpt2_tiny'], 'too few for one block of 128')   # without --block, a block that fits (this corpus is too short)
    assert not (d/'bad').exists()   # no --out created, or left behind

def test_failed_start_does_not_block_and_resume_checks_the_corpus(probe):
    d, r = probe
    assert_user_error(r['fail_at_once'], 'at least 2 documents')
    for k in ('rerun', 'resume_fixed', 'finished', 'stopped_same'): assert_ok(r[k])
    for run in ('r6', 'r6b', 'r3', 'r3b'):
        card = json.loads((d/run/'final'/'model_card.json').read_text())
        assert card['corpus']['source'] == str((d/'a.txt').resolve()) and card['corpus']['n_docs'] == 6, card['corpus']
    for k in ('finished_other', 'stopped_other'): assert_user_error(r[k], 'was tokenised from another corpus', str(d/'b.txt'))

_RACE = """
import sys, time
from pathlib import Path
import nlpbook_ch.data as data
from nlpbook_ch.pretrain import resolve_corpus
unpack = data.download_extract
def slow(url, dest, fetch):   # the real archive takes minutes to copy and unpack
    return unpack(url, dest, fetch=lambda u, to: (time.sleep(2), fetch(u, to)))
data.download_extract = slow
go = Path(sys.argv[1])
(go.parent/('ready.' + sys.argv[2])).touch()
while not go.exists(): time.sleep(0.01)
print('FOUND=' + str(resolve_corpus('imdb_full')))
"""

def test_two_runs_unpack_one_archive_once(tmp_path):
    "Two runs start on an archive that the (fresh) cache has not unpacked yet: one unpacks it, the other waits and reuses it."
    src = tmp_path/'imdb'
    for i, part in enumerate(('train/pos', 'train/neg', 'test/pos', 'test/neg', 'unsup')):
        (src/part).mkdir(parents=True); (src/part/f'{i}_{i}.txt').write_text(f'Review {i}.')
    (tmp_path/'data'/'imdb_full').mkdir(parents=True)
    with tarfile.open(tmp_path/'data'/'imdb_full'/'imdb.tgz', 'w:gz') as t: t.add(src, arcname='imdb')
    env = dict(os.environ, OMP_NUM_THREADS='1', NLPBOOK_DATA=str(tmp_path/'data'), NLPBOOK_CACHE=str(tmp_path/'cache'))
    go = tmp_path/'go'
    ps = [subprocess.Popen([sys.executable, '-c', _RACE, str(go), str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=env, cwd=ROOT) for i in range(2)]
    t0 = time.time()
    while len(list(tmp_path.glob('ready.*'))) < 2 and time.time() - t0 < 300 and all(p.poll() is None for p in ps): time.sleep(0.05)
    go.touch()   # both start together
    outs = [p.communicate(timeout=300) for p in ps]
    for p, (out, err) in zip(ps, outs): assert p.returncode == 0 and 'FOUND=' in out, err[-2000:]
    found = {out.split('FOUND=', 1)[1].strip() for out, _ in outs}
    assert len(found) == 1 and sum('Waiting for another process to unpack' in out for out, _ in outs) == 1, outs
    assert [p.name for p in (tmp_path/'cache'/'data').iterdir() if not p.name.startswith('.')] == [Path(found.pop()).name]
    assert not [p for p in (tmp_path/'cache'/'data').iterdir() if p.name.endswith('.tmp')]
