"""Shared helpers for the benchmark scripts: safe environment defaults, machine description, peak memory, tables, result files.

Importing this module sets offline/cache defaults (only where the caller has not set them), so it must be
imported before fastai, torch or transformers.
"""
import os, sys, time, json, platform, datetime, resource, tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH/'results'

# The worktree's package, not some other installed copy.
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
from nlpbook_ch.core import usable_cores   # light: nothing in it reads OMP_NUM_THREADS

_TMP = Path(tempfile.gettempdir())
ENV_DEFAULTS = {
    'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1', 'NLPBOOK_OFFLINE': '1',
    'NLPBOOK_CACHE': str(_TMP/'nlpbook_bench_cache'), 'FASTAI_HOME': str(_TMP/'nlpbook_bench_fastai'),
    'HF_HOME': str(_TMP/'nlpbook_bench_hf'), 'MPLBACKEND': 'Agg', 'TOKENIZERS_PARALLELISM': 'false',
    'OMP_NUM_THREADS': str(usable_cores()),
}

def set_env_defaults():
    "Offline switches, caches outside the home folder, no GUI backend, one thread per core (unless already set)."
    for k, v in ENV_DEFAULTS.items(): os.environ.setdefault(k, v)

set_env_defaults()

def cpu_model() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or 'unknown'

def loadavg() -> str:
    try: return ' '.join(f'{x:.2f}' for x in os.getloadavg())
    except OSError: return 'n/a'

def machine_info() -> dict:
    "Where and when a benchmark ran: CPU, cores, threads, memory, versions, load."
    import torch
    try: mem = f"{int(Path('/proc/meminfo').read_text().split()[1]) / 2**20:.0f} GiB"
    except (OSError, IndexError, ValueError): mem = 'n/a'
    info = dict(date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
                host=platform.node(), cpu=cpu_model(), cores=os.cpu_count(),
                usable_cores=usable_cores(),
                torch_threads=torch.get_num_threads(), memory=mem, cuda=torch.cuda.is_available(),
                python=platform.python_version(), torch=torch.__version__, load_at_start=loadavg())
    for mod in ('fastai', 'transformers', 'sklearn'):
        try: info[mod] = __import__(mod).__version__
        except ImportError: pass
    return info

def sync():
    "Wait for the GPU's queued work (a no-op without CUDA), so that a wall-clock timing covers it."
    import torch
    if torch.cuda.is_available(): torch.cuda.synchronize()

def machine_md(info:dict) -> str:
    "The machine description as a markdown bullet list."
    return '\n'.join(f'- **{k}**: {v}' for k, v in info.items())

# ---- peak memory ----
def _vm(field):
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith(field + ':'): return int(line.split()[1]) * 1024
    except OSError: pass
    return None

def reset_peak_rss() -> bool:
    "Reset this process's peak resident set size (Linux: write 5 to /proc/self/clear_refs); False if unsupported."
    try:
        with open('/proc/self/clear_refs', 'w') as f: f.write('5')
        return True
    except OSError: return False

def peak_rss() -> int:
    "Peak resident set size in bytes since the last `reset_peak_rss` (VmHWM), else since the start (ru_maxrss)."
    hwm = _vm('VmHWM')
    if hwm is not None: return hwm
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == 'darwin' else r * 1024

def current_rss() -> int|None: return _vm('VmRSS')

class Timer:
    "Context manager measuring wall time in `.seconds`."
    def __enter__(self): self.t0 = time.perf_counter(); return self
    def __exit__(self, *a): self.seconds = time.perf_counter() - self.t0

def md_table(rows:list, columns:list=None) -> str:
    "A list of dicts as a markdown table (columns in the given order, default: the first row's keys)."
    columns = columns or list(rows[0])
    out = ['| ' + ' | '.join(columns) + ' |', '|' + '|'.join('---' for _ in columns) + '|']
    for r in rows: out.append('| ' + ' | '.join(str(r.get(c, '')) for c in columns) + ' |')
    return '\n'.join(out)

def write_results(out, stem:str, res:dict, md:str|None=None) -> Path:
    "Write `res` to `out`/`stem`.json and `md` (if any) to `stem`.md, each atomically; returns the markdown's path (else the JSON's)."
    from nlpbook_ch.core import atomic_path
    out = Path(out)
    for ext, text in (('json', json.dumps(res, indent=1, default=str)), ('md', md)):
        if text is None: continue
        with atomic_path(out/f'{stem}.{ext}') as tmp: tmp.write_text(text)
    return out/f'{stem}.{"md" if md is not None else "json"}'

def add_smoke(parser, what:str):
    "The `--smoke` flag every bench script has: `what` it runs instead, in seconds; results named `*_smoke`."
    parser.add_argument('--smoke', action='store_true',
                        help=f'{what}: every code path in seconds, results named *_smoke (their numbers mean nothing)')

def mean_sd(xs) -> tuple:
    "Mean and sample standard deviation (0 for a single value)."
    import statistics
    xs = list(xs)
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)
