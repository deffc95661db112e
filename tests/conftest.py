"""Test-session settings: offline, no writes to the home folder, deliberate thread count.

These run before any test module imports torch, fastai or transformers, so the libraries read them.
"""
import atexit, math, os, shutil, tempfile
from pathlib import Path
import pytest

_TMP = Path(tempfile.mkdtemp(prefix='nlpbook_ch_tests_'))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)   # the caches below (about 120 MB a run) go when the process ends
# pytest-xdist's workers (pytest.ini) inherit the environment of pytest's first process, which ran this file before them:
# that process records which of the variables below the user set, so that a worker tells the user's from its defaults.
_CACHES, _THREADS = ('FASTAI_HOME', 'HF_HOME', 'NLPBOOK_CACHE'), 'OMP_NUM_THREADS'
os.environ.setdefault('NLPBOOK_TESTS_USER_SET', ' '.join(k for k in (*_CACHES, _THREADS) if k in os.environ))
_USER_SET = set(os.environ['NLPBOOK_TESTS_USER_SET'].split())
# Download-capable libraries are switched offline, so no test can wait on a network retry loop.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('NLPBOOK_OFFLINE', '1')
# fastai, Hugging Face and the package write their caches into this process's temp folder: each worker has its own.
for _k, _sub in zip(_CACHES, ('fastai', 'hf', 'nlpbook_cache')):
    if _k not in _USER_SET: os.environ[_k] = str(_TMP/_sub)
os.environ.setdefault('MPLBACKEND', 'Agg')
# Threads: never more torch/OpenMP threads than cores. Measured on the 2-core test machine: with a second busy process
# on the cores, 2 threads made a small fastai training run 3-35x slower (OpenMP threads spinning against each other).
# pytest.ini runs the tests in pytest-xdist workers (one per core, at most 4): each worker gets an equal share of the
# cores (one thread each on 2 cores). Without workers (`pytest -n 0`): one thread, which a machine shared with other jobs
# needs. Override with OMP_NUM_THREADS.
def usable_cores() -> int:
    "The cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (a container given 2 of 64 cores)."
    n = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)
    try:
        quota, period = Path('/sys/fs/cgroup/cpu.max').read_text().split()
        if quota != 'max': n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError): pass
    return n

_WORKERS = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '0'))   # set by pytest-xdist in each worker, before this file runs
if _THREADS not in _USER_SET: os.environ[_THREADS] = str(max(1, usable_cores() // _WORKERS)) if _WORKERS else '1'
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')

def pytest_addoption(parser):
    parser.addoption('--nb-flags', default='', help='space-separated notebook test flags to run as well (e.g. "slow cuda online")')

def pytest_configure(config):
    # Cells flagged `online` need the network: when they are asked for, lift the offline switches
    # (this runs before test modules import huggingface_hub, which reads HF_HUB_OFFLINE at import).
    if 'online' in config.getoption('--nb-flags').split():
        for k in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE', 'NLPBOOK_OFFLINE'): os.environ[k] = '0'

@pytest.hookimpl(optionalhook=True)   # a pytest-xdist hook: `-n auto` (pytest.ini) starts one worker per usable core, at most 4
def pytest_xdist_auto_num_workers(config): return min(4, usable_cores())

# The longest test, started first so that the other workers share the rest of the suite meanwhile (measured on an idle
# 2-core machine: 04_ulmfit 382 s with 2 threads, every other test 31 s or less).
FIRST = ('test_notebook[04_ulmfit]',)

@pytest.hookimpl(tryfirst=True)   # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Order and group the tests for pytest-xdist's `--dist loadgroup` (pytest.ini): the longest test first, then the other
    notebooks (each its own group: seconds each), then one group per test file (its module fixtures are built once)."""
    def rank(it):
        if it.name in FIRST: return 0
        return 1 if it.originalname == 'test_notebook' else 2
    items.sort(key=rank)   # stable: within a rank, the collection's order
    for it in items:
        nb = it.originalname == 'test_notebook' and getattr(it, 'callspec', None)
        it.add_marker(pytest.mark.xdist_group(f'notebook:{it.callspec.id}' if nb else f'file:{it.path.name}'))

@pytest.fixture(scope='session')
def nb_flags(request): return request.config.getoption('--nb-flags').split()

@pytest.fixture(scope='session')
def tmp_root(): return _TMP
