"""The package, not only the checkout: the sdist and the wheel built from a clone's files carry the pretrained models,
and the wheel, installed outside the repository (`pip install --target`) and run from another folder, finds them,
answers `next-token`, trains a tiny ULMFiT and classifies with it; the notebook commands say in one line that they need
a clone. Also: the environment's Jupyter kernel runs a notebook, and environment.yml's pins meet settings.ini's bounds.

The installed package runs on this environment's dependencies (`--no-deps`), offline, on the shipped test data.
"""
import configparser, email.parser, json, os, re, shutil, subprocess, sys, tarfile, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
_ini = configparser.ConfigParser(delimiters=['=']); _ini.read(ROOT/'settings.ini')
CFG = _ini['DEFAULT']
MODELS = ROOT/'nlpbook_ch'/'pretrained'
SHIPPED = sorted(p.relative_to(ROOT).as_posix() for p in MODELS.rglob('*') if p.is_file() and '__pycache__' not in p.parts)
DATA = Path(os.environ.get('NLPBOOK_DATA') or ROOT.parent/'shared'/'data')
BENIGN = ('byte-compiling is disabled',)   # build log lines that say "warning" about the machine, not the package

def _clone_files() -> list:
    "The files a clone holds (tracked, plus new files git does not ignore): what `pip install git+URL` builds from."
    r = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=ROOT, capture_output=True, text=True)
    if r.returncode: pytest.skip('not a git checkout: cannot tell which files a clone holds')
    return [f for f in r.stdout.split('\0') if f and (ROOT/f).is_file()]

@pytest.fixture(scope='module')
def dists(tmp_path_factory):
    "`python -m build` on a copy of the clone's files: the sdist, then the wheel built from the sdist, and the log."
    pytest.importorskip('build')
    import setuptools
    from packaging.version import Version
    if Version(setuptools.__version__) < Version('77'): pytest.skip('building needs setuptools 77 or newer')
    tmp = tmp_path_factory.mktemp('dist')
    for f in _clone_files():
        (tmp/'src'/f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT/f, tmp/'src'/f)
    r = subprocess.run([sys.executable, '-m', 'build', '--no-isolation', '--outdir', str(tmp/'dist'), str(tmp/'src')],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    (sdist,), (wheel,) = list((tmp/'dist').glob('*.tar.gz')), list((tmp/'dist').glob('*.whl'))
    return dict(sdist=sdist, wheel=wheel, log=r.stdout + r.stderr, src=tmp/'src')

def test_build_has_no_warnings(dists):
    "No license, classifier or package-data warning (setuptools wants an SPDX expression and no license classifier)."
    bad = [l for l in dists['log'].splitlines() if re.search(r'warn|deprecat', l, re.I) and not any(b in l for b in BENIGN)]
    assert not bad, bad

def test_distributions_carry_the_models(dists):
    wheel = zipfile.ZipFile(dists['wheel']).namelist()
    assert set(SHIPPED) <= set(wheel) and len(SHIPPED) >= 11, sorted(set(SHIPPED) - set(wheel))
    assert dists['wheel'].stat().st_size < 50e6
    with tarfile.open(dists['sdist']) as t: sdist = {n.split('/', 1)[1] for n in t.getnames() if '/' in n}
    assert set(SHIPPED) | {'settings.ini', 'setup.py', 'pyproject.toml', 'README.md', 'LICENSE'} <= sdist

def test_wheel_from_the_tree_is_the_wheel_from_the_sdist(dists, tmp_path):
    "`pip install git+URL` builds the wheel straight from the clone's tree: it holds the same files as the one built from the sdist."
    r = subprocess.run([sys.executable, '-m', 'build', '--wheel', '--no-isolation', '--outdir', str(tmp_path), str(dists['src'])],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    (wheel,) = tmp_path.glob('*.whl')
    assert sorted(zipfile.ZipFile(wheel).namelist()) == sorted(zipfile.ZipFile(dists['wheel']).namelist())

def _metadata(wheel):
    z = zipfile.ZipFile(wheel)
    (name,) = [n for n in z.namelist() if n.endswith('.dist-info/METADATA')]
    return email.parser.Parser().parsestr(z.read(name).decode())

def test_metadata(dists):
    md = _metadata(dists['wheel'])
    assert md['Summary'] == CFG['description'] and md['License-Expression'] == 'Apache-2.0' and md['License'] is None
    classifiers = md.get_all('Classifier')
    assert not [c for c in classifiers if c.startswith('License ::')]
    assert {f'Programming Language :: Python :: {v}' for v in CFG['python_versions'].split()} <= set(classifiers)
    assert md['Requires-Python'] == '>=' + CFG['min_python']
    urls = dict(u.split(', ', 1) for u in md.get_all('Project-URL'))
    assert urls['Repository'] == CFG['git_url'] and urls['Documentation'] == CFG['doc_host'] + CFG['doc_baseurl']
    reqs = md.get_all('Requires-Dist')
    assert 'scikit-learn' in reqs and {'jupyterlab; extra == "dev"', 'ipywidgets; extra == "dev"'} <= set(reqs)

# ---------------------------------------------------------------- the wheel, installed outside the repository
@pytest.fixture(scope='module')
def installed(dists, tmp_path_factory):
    "(folder the wheel is installed into, environment that uses it, a working directory outside the repository)."
    if not (DATA/'imdb_subset').is_dir(): pytest.skip(f'the shipped test data is not in {DATA}')
    tmp = tmp_path_factory.mktemp('installed')
    r = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-compile', '--no-index', '--quiet',
                        '--target', str(tmp/'site'), str(dists['wheel'])], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if not k.startswith(('NLPBOOK_', 'PYTHON'))}
    env.update(PYTHONPATH=str(tmp/'site'), NLPBOOK_OFFLINE='1', HF_HUB_OFFLINE='1', NLPBOOK_DATA=str(DATA),
               FASTAI_HOME=str(tmp/'fastai'), HF_HOME=str(tmp/'hf'), NLPBOOK_CACHE=str(tmp/'cache'), MPLBACKEND='Agg',
               OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))
    (tmp/'work').mkdir()
    return tmp/'site', env, tmp/'work'

def _run(installed, *args, timeout=600):
    site, env, cwd = installed
    exe = [str(site/'bin'/'nlpbook-ch')] if args[0] != 'python' else [sys.executable]
    return subprocess.run([*exe, *args[1 if args[0] == 'python' else 0:]], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)

WHERE = """
import json, importlib.metadata as im, nlpbook_ch
from nlpbook_ch.models import pretrained_dirs, find_pretrained, find_pretrained_gpt2, check_model_files, repo_url
from nlpbook_ch.pretrain import awd_pretrained
md = im.metadata('nlpbook_ch')
print(json.dumps(dict(package=nlpbook_ch.__file__, dirs=list(map(str, pretrained_dirs())), awd=str(find_pretrained()),
    gpt2=str(find_pretrained_gpt2()), checked=[len(check_model_files(find_pretrained())), len(check_model_files(find_pretrained_gpt2()))],
    files=list(map(str, awd_pretrained('quick').files)), repo=repo_url(), license=md['License-Expression'])))
"""

def test_installed_package_finds_its_models_from_elsewhere(installed):
    site = installed[0]
    r = _run(installed, 'python', '-c', WHERE)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got['package'] == str(site/'nlpbook_ch'/'__init__.py') and got['dirs'] == [str(site/'nlpbook_ch'/'pretrained')]
    assert got['awd'] == str(site/'nlpbook_ch'/'pretrained'/'awd_lstm_imdb_small') and got['gpt2'].startswith(str(site))
    assert got['checked'] == [2, 5] and all(f.startswith(got['awd']) for f in got['files'])   # every file checked against its card
    assert got['repo'] == CFG['git_url'] and got['license'] == 'Apache-2.0'

def test_pip_show(installed):
    site = installed[0]
    r = _run(installed, 'python', '-m', 'pip', 'show', '-v', 'nlpbook_ch')
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    assert f'Location: {site}' in out and f"Summary: {CFG['description']}" in out
    assert f"Repository, {CFG['git_url']}" in out and f"Documentation, {CFG['doc_host']}{CFG['doc_baseurl']}" in out
    assert f"Programming Language :: Python :: {CFG['min_python']}" in out
    from importlib.metadata import version
    from packaging.version import Version
    if Version(version('pip')) >= Version('25.1'): assert 'License-Expression: Apache-2.0' in out   # older pips show no expression

def test_installed_next_token(installed):
    site = installed[0]
    r = _run(installed, 'next-token', 'This movie was', '-k', '3')
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"from {site/'nlpbook_ch'/'pretrained'/'gpt2_imdb_small'}" in r.stderr   # the installed package's own GPT-2 answered
    head, *rows = r.stdout.strip().splitlines()
    assert head.split() == ['token_id', 'token', 'probability'] and len(rows) == 3
    probs = [float(l.split()[-1]) for l in rows]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) < 1

def test_installed_ulmfit_and_classify(installed):
    from nlpbook_ch.ulmfit import TINY
    cwd = installed[2]
    (cwd/'tiny.json').write_text(json.dumps(TINY))
    r = _run(installed, 'ulmfit', '--config', 'tiny.json', '--out', 'run')
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    rep = json.loads((cwd/'run'/'report.json').read_text())
    assert rep['complete'] and rep['stages'] == ['lm_frozen', 'lm_unfrozen', 'clf_1', 'clf_2']
    assert len(rep['stage_accuracy']) == 2 and all(0 <= a <= 1 for a in rep['stage_accuracy'])
    (cwd/'reviews.txt').write_text('A wonderful film.\nDreadful, a waste of time.\nThe plot was fine\n')
    r = _run(installed, 'classify', 'I loved it', 'I hated it', '--file', 'reviews.txt', '--model', 'run')
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [l.split('\t') for l in r.stdout.strip().splitlines()]
    assert [t for *_, t in rows] == ['I loved it', 'I hated it', 'A wonderful film.', 'Dreadful, a waste of time.', 'The plot was fine']
    assert all(label in ('neg', 'pos') and 0.5 <= float(p) <= 1 for label, p, _ in rows)

@pytest.fixture(scope='module')
def notebook_commands(installed):
    "What `chapter` and `docs` answer from the installed package, which has no notebooks."
    return {cmd: _run(installed, cmd, '--out', 'out') for cmd in ('chapter', 'docs')}

@pytest.mark.parametrize('cmd', ['chapter', 'docs'])
def test_notebook_commands_say_they_need_a_clone(installed, notebook_commands, cmd):
    r = notebook_commands[cmd]
    assert r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('nlpbook-ch: error:') and 'clone' in err[0], r.stderr
    assert not (installed[2]/'out').exists()

@pytest.mark.parametrize('cmd', ['chapter', 'docs'])
def test_notebook_commands_say_where_to_clone(notebook_commands, cmd):
    assert CFG['git_url'] in notebook_commands[cmd].stderr

# ---------------------------------------------------------------- the development environment
def test_jupyter_kernel_runs_a_notebook(tmp_path):
    "The environment's `python3` kernel runs a two-cell notebook; ipywidgets (for progress bars) and JupyterLab are there."
    nbformat, nbclient = pytest.importorskip('nbformat'), pytest.importorskip('nbclient')
    import importlib.util
    assert importlib.util.find_spec('jupyterlab') is not None, 'JupyterLab is missing: pip install -e ".[dev]"'
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('import ipywidgets, nlpbook_ch\nx = 6 * 7'),
                                         nbformat.v4.new_code_cell('print(x, nlpbook_ch.__version__)')])
    nbclient.NotebookClient(nb, kernel_name='python3', timeout=120, resources={'metadata': {'path': str(tmp_path)}}).execute()
    assert nb.cells[1].outputs[0]['text'].split() == ['42', CFG['version']]

def test_environment_pins_meet_the_package_bounds():
    "Every requirement in settings.ini (and the dev extra) is pinned in environment.yml, at a version its bounds allow."
    yaml = pytest.importorskip('yaml')
    from packaging.requirements import Requirement
    deps = yaml.safe_load((ROOT/'environment.yml').read_text())['dependencies']
    pins = dict(o.split('==') for o in next(d['pip'] for d in deps if isinstance(d, dict)) if '==' in o)
    pins = {k.lower().replace('_', '-'): v for k, v in pins.items()}
    for req in map(Requirement, (CFG['requirements'] + ' ' + CFG['dev_requirements']).split()):
        assert req.name.lower() in pins, f'{req.name} is not pinned in environment.yml'
        assert req.specifier.contains(pins[req.name.lower()]), f'environment.yml pins {req.name}=={pins[req.name.lower()]}, outside {req}'
    python = next(d for d in deps if isinstance(d, str) and d.startswith('python='))
    assert python.split('=')[1] in CFG['python_versions'].split()
