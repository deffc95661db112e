"""Test-session settings: offline, no writes to the home folder, deliberate thread count.

These run before any test module imports torch, fastai or transformers, so the libraries read them.
"""
import atexit, os, shutil, tempfile
from pathlib import Path
import pytest

try: from nlpbook_ch.core import usable_cores   # imports nothing that reads OMP_NUM_THREADS (NumPy's BLAS would)
except ImportError as e: raise SystemExit(f"the tests need the package installed: pip install -e '.[dev]' ({e})")

_TMP = Path(tempfile.mkdtemp(prefix='nlpbook_ch_tests_'))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)   # the caches below (about 120 MB a run) go when the process ends
# pytest-xdist's workers (pytest.ini) inherit the environment of pytest's first process, which ran this file before them:
# that process records its pid and which of the variables below the user set, so that its workers tell the user's values
# from its defaults. Any other process (a pytest that a test starts) is a first process itself.
_CACHES, _THREADS, _RECORD = ('FASTAI_HOME', 'HF_HOME', 'NLPBOOK_CACHE'), 'OMP_NUM_THREADS', 'NLPBOOK_TESTS_USER_SET'
_pid, _, _names = os.environ.get(_RECORD, '').partition(':')
_IS_WORKER = _pid == str(os.getppid()) and 'PYTEST_XDIST_WORKER' in os.environ
if not _IS_WORKER:
    os.environ[_RECORD] = f"{os.getpid()}:{' '.join(k for k in (*_CACHES, _THREADS) if k in os.environ)}"
    for _k in ('PYTEST_XDIST_WORKER', 'PYTEST_XDIST_WORKER_COUNT'): os.environ.pop(_k, None)   # an outer run's, inherited
_USER_SET = set(os.environ[_RECORD].partition(':')[2].split())
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
# pytest.ini runs the tests in pytest-xdist workers (one per core, at most 4): the workers share the cores out as threads
# (one each on 2 cores; more workers than cores, `-n 8` on 2, still one each). Without workers (`pytest -n 0`): one
# thread, which a machine shared with other jobs needs. The user's OMP_NUM_THREADS applies to each process, and `-n auto`
# then starts only as many workers as have that many cores each.
def worker_threads(cores:int, workers:int, worker:int) -> int:
    "Threads for worker number `worker` of `workers`: the cores shared out, the first `cores % workers` workers one more."
    return max(1, cores // workers + (worker < cores % workers))

if _THREADS not in _USER_SET:
    _w = os.environ.get('PYTEST_XDIST_WORKER', '') if _IS_WORKER else ''   # 'gw0', 'gw1', ...
    os.environ[_THREADS] = str(worker_threads(usable_cores(), int(os.environ['PYTEST_XDIST_WORKER_COUNT']), int(_w[2:]))) if _w else '1'
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')

def pytest_addoption(parser):
    parser.addoption('--nb-flags', default='', help='space-separated notebook test flags to run as well (e.g. "slow cuda online")')

def pytest_configure(config):
    # Cells flagged `online` need the network: when they are asked for, lift the offline switches
    # (this runs before test modules import huggingface_hub, which reads HF_HUB_OFFLINE at import).
    if 'online' in config.getoption('--nb-flags').split():
        for k in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE', 'NLPBOOK_OFFLINE'): os.environ[k] = '0'

def auto_workers(cores:int, user_threads:str|None=None) -> int:
    "Workers for `-n auto`: one per core, at most 4; with the user's thread count, as many as have that many cores each."
    try: per = max(1, int(user_threads)) if user_threads is not None else 1
    except ValueError: per = 1   # not a number: torch ignores it too
    return max(1, min(4, cores // per))

@pytest.hookimpl(optionalhook=True)   # a pytest-xdist hook: `-n auto` (pytest.ini) starts `auto_workers` workers
def pytest_xdist_auto_num_workers(config):
    if os.environ.get('PYTEST_XDIST_AUTO_NUM_WORKERS'): return None   # pytest-xdist's own setting, read by its own hook
    return auto_workers(usable_cores(), os.environ[_THREADS] if _THREADS in _USER_SET else None)

# The longest test, started first so that the other workers share the rest of the suite meanwhile (measured on an idle
# 2-core machine: 04_ulmfit 382 s with 2 threads, every other test 31 s or less).
FIRST = ('test_notebook[04_ulmfit]',)

@pytest.hookimpl(tryfirst=True)   # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Order and group the tests for pytest-xdist's `--dist loadgroup` (pytest.ini): the longest test first, then the other
    notebooks (each its own group: seconds each), then one group per test file (its module fixtures are built once)."""
    is_nb = lambda it: getattr(it, 'originalname', None) == 'test_notebook' and hasattr(it, 'callspec')
    items.sort(key=lambda it: 0 if it.name in FIRST else 1 if is_nb(it) else 2)   # stable: within a rank, the collection's order
    if not config.pluginmanager.hasplugin('xdist'): return
    for it in items: it.add_marker(pytest.mark.xdist_group(f'notebook:{it.callspec.id}' if is_nb(it) else f'file:{it.path.name}'))

@pytest.fixture(scope='session')
def nb_flags(request): return request.config.getoption('--nb-flags').split()

@pytest.fixture(scope='session')
def tmp_root(): return _TMP
