#!/usr/bin/env python
"""Does the "your own texts" route work on real data sets the project does not ship? `nlpbook-ch ulmfit --data CSV`, run
end to end as a user runs it, on four human-rated sentiment sets, against the TF-IDF baseline the command reports on the
same split: how accurate (accuracy, macro-F1), how long the whole command takes, how much memory it needs.

The data: the ground-truth files of Hutto and Gilbert (2014), "VADER: A Parsimonious Rule-based Model for Sentiment
Analysis of Social Media Text" (ICWSM-14), shipped inside the source distribution of `vaderSentiment==3.3.2` on PyPI
(MIT licence): sentence snippets of Rotten Tomatoes movie reviews (Pang and Lee), of Amazon product reviews (Hu and Liu
2004), of New York Times editorials, and tweets, each the mean of at least 20 human ratings on -4..+4. The script fetches
the source distribution once with pip (`pip download --no-deps --no-binary :all:`; or `--sdist FILE`, a copy you have),
checks its sha256, and reads the four files straight out of its nested tar archives. Labels: `positive` where the mean
rating is above 0.5, `negative` where it is below -0.5, else `neutral` (three unbalanced classes); `--binary` drops the
neutral band (two classes).

Each set becomes a CSV with columns `text,label`, then one `nlpbook-ch ulmfit --data CSV --out RUN` per set (the command's
defaults: its schedule from the data's size, a seeded stratified 10% validation split, the project's pretrained
AWD-LSTM), in a child process with `OMP_NUM_THREADS=--threads`; the wall clock of the whole command, its peak resident
memory and its log are recorded, then its report (ULMFiT and the TF-IDF + logistic regression baseline, per class).

    python bench/heldout_sentiment.py                          # all four sets: movie amazon nyt tweets (long: see --help)
    python bench/heldout_sentiment.py --sets movie --threads 1 # one set, one torch thread
    python bench/heldout_sentiment.py --binary                 # positive vs negative only
    python bench/heldout_sentiment.py --smoke                  # the first 300 amazon snippets, the TINY preset: a smoke run

A set whose run folder (under `--runs`, default the package cache) holds a finished run is not trained again: its results
are read and rendered again; an interrupted run is continued with `--resume`. Writes
bench/results/heldout_sentiment.{md,json} (--binary: heldout_sentiment_binary.*; --smoke: heldout_sentiment_smoke.* in a
temporary folder unless --out is given).
"""
import argparse, datetime, hashlib, io, json, os, re, shutil, subprocess, sys, tarfile, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C   # offline/cache defaults before torch or fastai are imported

SDIST = dict(name='vaderSentiment', version='3.3.2', file='vaderSentiment-3.3.2.tar.gz',
             sha256='5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9',
             inner='additional_resources/hutto_ICWSM_2014.tar.gz', licence='MIT')
"The source distribution that holds the data: its file name and sha256 (checked), and where the data archive lies in it."
SETS = {'movie': ('movieReviewSnippets_GroundTruth.txt', 'movie-review sentence snippets from Rotten Tomatoes (Pang and Lee)'),
        'amazon': ('amazonReviewSnippets_GroundTruth.txt', 'sentence snippets of Amazon customer reviews of 5 products (Hu and Liu 2004)'),
        'nyt': ('nytEditorialSnippets_GroundTruth.txt', 'sentence snippets of 500 New York Times opinion editorials'),
        'tweets': ('tweets_GroundTruth.txt', 'tweets')}
"Set name -> (ground-truth file in the data archive, what it holds)."
IN_DOMAIN = {'movie'}
"Sets of the same domain as the text the project's AWD-LSTM was pretrained on (IMDB movie reviews)."
THRESHOLD = 0.5
"A mean rating above +THRESHOLD is positive, below -THRESHOLD negative, else neutral."
SMOKE_SET, SMOKE_ROWS = 'amazon', 300
CITATION = ('Hutto, C.J. and Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment Analysis of Social '
            'Media Text. Eighth International Conference on Weblogs and Social Media (ICWSM-14).')
TARGET_MINUTES, TARGET_ROWS = 10, 10_000
"The figure asked for: a data set of TARGET_ROWS sentences end to end within TARGET_MINUTES on a 2-core machine."

class SdistError(RuntimeError): "The source distribution could not be fetched, or is not the expected file."
class SdistDownloadError(SdistError): "pip could not download the source distribution (no network, or the index failed)."

def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''): h.update(block)
    return h.hexdigest()

# ---------------------------------------------------------------- the data
def fetch_sdist(cache:Path, local=None, sha256:str=SDIST['sha256'], log=print) -> Path:
    "The checked source distribution in `cache`: already there, copied from `local`, or fetched with pip (written atomically)."
    from nlpbook_ch.core import atomic_path, cache_lock
    dest = Path(cache)/SDIST['file']
    with cache_lock(dest, log=log):
        if dest.exists():
            if sha256_of(dest) == sha256: return dest
            log(f"{dest} does not have the expected sha256: fetching it again"); dest.unlink()
        if local is not None:
            got = sha256_of(local)
            if got != sha256: raise SdistError(f"{local} has sha256 {got}, not {sha256} ({SDIST['file']})")
            with atomic_path(dest) as tmp: shutil.copyfile(local, tmp)
            return dest
        with tempfile.TemporaryDirectory(dir=cache, prefix='.pip-') as tmp:
            cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--no-binary', ':all:', '--retries', '2', '--timeout', '30',
                   f"{SDIST['name']}=={SDIST['version']}", '-d', tmp]
            log(f"fetching {SDIST['file']}: {' '.join(cmd[2:])}")
            r = subprocess.run(cmd, capture_output=True, text=True)
            got = Path(tmp)/SDIST['file']
            if r.returncode != 0 or not got.exists():
                tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
                raise SdistDownloadError(f"pip could not download {SDIST['name']}=={SDIST['version']} (exit {r.returncode}): {' / '.join(tail)}; "
                                 f"without a network, pass a copy of {SDIST['file']} with --sdist")
            digest = sha256_of(got)
            if digest != sha256: raise SdistError(f"the downloaded {SDIST['file']} has sha256 {digest}, not {sha256}")
            os.replace(got, dest)   # same folder: an atomic rename
    log(f"{dest}: sha256 {sha256} checked")
    return dest

def read_members(sdist, names, inner:str=SDIST['inner']) -> dict:
    "name -> bytes of each of `names` in the data archive `inner` (a path ending) inside the source distribution `sdist`: nothing is extracted to disk."
    with tarfile.open(sdist, 'r:*') as outer:
        hits = [m for m in outer.getmembers() if m.isfile() and m.name.endswith('/' + inner)]
        if len(hits) != 1: raise SdistError(f"{sdist} holds {len(hits)} files ending in {inner}, expected one")
        data = outer.extractfile(hits[0]).read()
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode='r:*') as arch:
        by_name = {Path(m.name).name: m for m in arch.getmembers() if m.isfile()}
        for n in names:
            if n not in by_name: raise SdistError(f"{inner} in {sdist} has no {n}; it has {', '.join(sorted(by_name))}")
            out[n] = arch.extractfile(by_name[n]).read()
    return out

def decode(raw:bytes) -> tuple:
    "(text, encoding): UTF-8 when the bytes are valid UTF-8 (all four files are, in 3.3.2), else latin-1 (which decodes any byte), said in the results."
    try: return raw.decode('utf-8'), 'utf-8'
    except UnicodeDecodeError: return raw.decode('latin-1'), 'latin-1 (not valid UTF-8)'

def parse_ground_truth(text:str) -> tuple:
    """(rows, stats) of a ground-truth file: `ID<TAB>MEAN-RATING<TAB>TEXT` lines, no header.

    Lines end at '\\n' only (never `str.splitlines`, which would also cut at U+0085, U+2028 and the like inside a text); a
    trailing '\\r' (CRLF files) is removed; a tab inside the text stays in the text. Empty lines and lines whose rating is
    not a number are dropped and counted; surrounding whitespace of a text is removed; the text is otherwise kept as
    written (`''` quoting, HTML entities)."""
    rows, st = [], dict(lines=0, crlf_lines=0, empty_lines=0, bad_lines=0, bad_examples=[], stripped_texts=0,
                        double_apostrophe_texts=0, duplicate_ids=0)
    seen = set()
    for line in text.split('\n'):
        if line.endswith('\r'): line = line[:-1]; st['crlf_lines'] += 1
        if not line.strip(): st['empty_lines'] += 1; continue
        st['lines'] += 1
        parts = line.split('\t', 2)
        try:
            if len(parts) != 3: raise ValueError('fewer than 3 tab-separated fields')
            rating = float(parts[1])
            if rating != rating or abs(rating) > 4: raise ValueError(f'rating {parts[1]!r} outside -4..4')
            if not parts[2].strip(): raise ValueError('empty text')
        except ValueError as e:
            st['bad_lines'] += 1
            if len(st['bad_examples']) < 3: st['bad_examples'].append(f"{line[:60]!r}: {e}")
            continue
        t = parts[2].strip()
        st['stripped_texts'] += t != parts[2]
        st['double_apostrophe_texts'] += "''" in t
        st['duplicate_ids'] += parts[0] in seen; seen.add(parts[0])
        rows.append((parts[0], rating, t))
    st['rows'] = len(rows)
    return rows, st

def label_for(rating:float, binary:bool=False) -> str|None:
    "positive (> THRESHOLD), negative (< -THRESHOLD), else neutral; None for neutral with `binary` (the row is dropped)."
    if rating > THRESHOLD: return 'positive'
    if rating < -THRESHOLD: return 'negative'
    return None if binary else 'neutral'

def labelled(rows, binary=False, limit=None) -> tuple:
    "(texts, labels, dropped_neutral) of the first `limit` rows (all if None)."
    texts, labels, dropped = [], [], 0
    for _, r, t in rows[:limit]:
        l = label_for(r, binary)
        if l is None: dropped += 1; continue
        texts.append(t); labels.append(l)
    return texts, labels, dropped

def write_csv(texts, labels, dest:Path) -> str:
    "A `text,label` CSV at `dest` (UTF-8, written atomically, read back and compared); its sha256."
    import pandas as pd
    from nlpbook_ch.core import atomic_path
    df = pd.DataFrame(dict(text=texts, label=labels))
    with atomic_path(dest) as tmp:
        df.to_csv(tmp, index=False, encoding='utf-8')
        back = pd.read_csv(io.StringIO(tmp.read_bytes().decode('utf-8')), sep=',', dtype=str, keep_default_na=False, engine='c')   # as the command reads it
        if back.text.tolist() != list(texts) or back.label.tolist() != list(labels):
            raise RuntimeError(f"{dest}: the CSV does not read back as written")
    return sha256_of(dest)

def prepare(names, sdist:Path, folder:Path, binary=False, smoke=False, log=print) -> dict:
    "name -> the data set's CSV in `folder` and what was read, kept and dropped."
    raw = read_members(sdist, [SETS[n][0] for n in names])
    out = {}
    for n in names:
        file, what = SETS[n]
        text, enc = decode(raw[file])
        rows, st = parse_ground_truth(text)
        limit = SMOKE_ROWS if smoke else None
        texts, labels, neutral = labelled(rows, binary, limit)
        name = n + ('_binary' if binary else '') + (f'_first{limit}' if limit else '')
        csv = Path(folder)/f'{name}.csv'
        sha = write_csv(texts, labels, csv)
        counts = {l: labels.count(l) for l in ('negative', 'neutral', 'positive') if l in labels}
        ratings = [r for _, r, _ in rows]
        out[n] = dict(name=n, file=file, what=what, bytes=len(raw[file]), encoding=enc, parse=st, rating_min=min(ratings),
                      rating_max=max(ratings), first_rows=limit, neutral_dropped=neutral, csv=str(csv), csv_sha256=sha,
                      csv_rows=len(texts), class_counts=counts)
        log(f"data  {n}: {st['rows']:,} rows read ({enc}; {st['bad_lines']} bad, {st['empty_lines']} empty lines dropped)"
            + (f", the first {limit}" if limit else '') + (f", {neutral} neutral dropped" if binary else '')
            + f" -> {csv} ({', '.join(f'{k} {v:,}' for k, v in counts.items())})")
    return out

# ---------------------------------------------------------------- one run of the command
def command(csv, run:Path, resume=False, config=None, mode=None) -> list:
    "The `nlpbook-ch ulmfit` command line for one set (the console script beside this Python, else `python -m nlpbook_ch.cli`)."
    exe = Path(sys.executable).parent/'nlpbook-ch'
    argv = [str(exe)] if exe.exists() else [sys.executable, '-m', 'nlpbook_ch.cli']
    argv += ['ulmfit', '--data', str(csv), '--out', str(run)]
    if config is not None: argv += ['--config', str(config)]
    if mode is not None: argv += ['--mode', mode]
    return argv + (['--resume'] if resume else [])

BAR = re.compile(r'\[(\d+)/(\d+) (?:\d+:)?\d\d:\d\d<((?:\d+:)?\d\d:\d\d)\]')
"fastprogress's progress text `[done/total elapsed<left]`: its time left is for the current epoch (or validation pass)."

def progress_of(log_text:str) -> dict:
    "What the command's log showed while it ran: stage lines, progress-bar updates with a time left, other time-left lines."
    parts = re.split(r'[\r\n]', log_text)
    return dict(stage_lines=sum(1 for p in parts if re.match(r'done  \S+ \[\d+/\d+\]', p)),
                bar_updates_with_time_left=sum(1 for p in parts if BAR.search(p)),
                other_time_left_lines=[p.strip() for p in parts if re.search(r'\bleft\b', p) and not BAR.search(p)][:5])

def run_command(argv, log_file:Path, threads:int, cwd:Path, echo=print) -> dict:
    "Run `argv` with `threads` torch/OpenMP threads, appending its output to `log_file` (complete lines echoed); wall time, peak RSS, exit status."
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED='1',
               PYTHONPATH=os.pathsep.join([str(C.ROOT)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    started = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')
    with open(log_file, 'ab') as f:
        f.write(f"\n# {started}: OMP_NUM_THREADS={threads} {' '.join(argv)}\n".encode())
        f.flush()
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        buf = b''
        try:
            while chunk := os.read(p.stdout.fileno(), 65536):
                f.write(chunk); f.flush()
                buf += chunk
                *lines, buf = buf.split(b'\n')
                for l in lines:   # a progress bar rewrites its line with '\r': show its last state
                    shown = [s for s in l.decode('utf-8', 'replace').split('\r') if s.strip()]
                    if shown: echo(shown[-1].rstrip())
            _, status, ru = os.wait4(p.pid, 0)   # this child's own rusage (RUSAGE_CHILDREN: the largest of all children so far)
            p.returncode = os.waitstatus_to_exitcode(status)
        finally:
            if p.returncode is None: p.kill(); p.wait()
            p.stdout.close()
        wall = time.perf_counter() - t0
    import resource
    return dict(started=started, threads=threads, argv=argv, returncode=p.returncode, wall_s=round(wall, 1),
                peak_rss_mib=round(ru.ru_maxrss / 1024, 1), children_max_rss_mib=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
                user_s=round(ru.ru_utime, 1), sys_s=round(ru.ru_stime, 1))

def run_status(run:Path) -> str:
    "'finished' (a complete report with its evaluation), 'partial' (a run to continue with --resume) or 'new'."
    rep = run/'report.json'
    if rep.exists():
        r = json.loads(rep.read_text())
        if r.get('complete') and 'evaluation' in r: return 'finished'
    return 'partial' if (run/'state.json').exists() else 'new'

def _read_attempts(run:Path) -> list:
    f = run/'bench_attempts.json'
    return json.loads(f.read_text()) if f.exists() else []

def train_set(d:dict, run:Path, threads:int, config=None, mode=None, echo=print) -> dict:
    "The set `d` (from `prepare`) through `nlpbook-ch ulmfit` into `run`, unless `run` holds a finished run on the same CSV."
    from nlpbook_ch.core import atomic_path
    run.mkdir(parents=True, exist_ok=True)
    attempts, status = _read_attempts(run), run_status(run)
    other = [a for a in attempts if a.get('csv_sha256') not in (None, d['csv_sha256'])]
    if other and status != 'new':
        raise ValueError(f"{run} holds a run on another version of {Path(d['csv']).name}: remove the folder, or choose another --runs")
    if status == 'finished':
        echo(f"skip  {d['name']}: {run} holds a finished run (results read again; remove the folder to train again)")
        return dict(attempts=attempts, trained_now=False)
    argv = command(d['csv'], run, resume=status == 'partial', config=config, mode=mode)
    echo(f"run   {d['name']}: {' '.join(argv)}  (OMP_NUM_THREADS={threads}; log: {run/'command.log'})")
    a = run_command(argv, run/'command.log', threads, cwd=run, echo=lambda m: echo(f'      {m}'))
    a.update(resumed=status == 'partial', csv_sha256=d['csv_sha256'])
    attempts.append(a)
    with atomic_path(run/'bench_attempts.json') as tmp: tmp.write_text(json.dumps(attempts, indent=1))
    echo(f"      exit {a['returncode']} after {a['wall_s']:.0f} s, peak RSS {a['peak_rss_mib']:,.0f} MiB")
    return dict(attempts=attempts, trained_now=True)

def collect(run:Path, attempts:list) -> dict:
    "A finished (or failed) run's figures: its report, stage times, schedule, the command's wall time and memory."
    res = dict(run=str(run), status=run_status(run), attempts=len(attempts))
    ok = [a for a in attempts if a['returncode'] == 0]
    if attempts:
        res.update(wall_s=round(sum(a['wall_s'] for a in attempts), 1), peak_rss_mib=max(a['peak_rss_mib'] for a in attempts),
                   threads=sorted({a['threads'] for a in attempts}), returncode=attempts[-1]['returncode'],
                   resumed=any(a.get('resumed') for a in attempts), failed_attempts=len(attempts) - len(ok))
    log = run/'command.log'
    if log.exists():
        text = log.read_text(encoding='utf-8', errors='replace')
        res['progress'] = progress_of(text)
        lines = [s.strip() for l in text.split('\n') for s in l.split('\r')[-1:]]
        res['notes'] = [l for l in lines if l.startswith(('note ', 'data  note '))][:10]
        res['plan'] = [l for l in lines if l.startswith('plan ')][:3]
        if res['status'] != 'finished': res['log_tail'] = [l for l in lines if l][-8:]
    if res['status'] != 'finished': return res
    rep, state = json.loads((run/'report.json').read_text()), json.loads((run/'state.json').read_text())
    ev, cfg, m = rep['evaluation'], state['config'], state['metrics']
    u, b = ev['ulmfit'], ev['tfidf']
    n_train = rep['data']['n_train']
    clf = [k for k in m if k.startswith('clf_')]
    steps = sum(e * (n_train // cfg['clf_bs']) for _, e, _ in cfg['stages'])   # fastai drops each epoch's last partial batch
    clf_s = sum(m[k]['seconds'] for k in clf)
    res.update(n_train=n_train, n_valid=rep['data']['n_valid'], classes=rep['data']['classes'], schedule=rep.get('schedule'),
               mode=cfg['mode'], pretrained=cfg['pretrained'], pretrained_model=cfg['pretrained_model'], cpu_bf16=cfg.get('cpu_bf16'),
               clf_bs=cfg['clf_bs'], lm_bs=cfg['lm_bs'], stages=cfg['stages'], lm_frozen=cfg['lm_frozen'], lm_unfrozen=cfg['lm_unfrozen'],
               stage_seconds={k: v['seconds'] for k, v in m.items()}, train_seconds=rep['seconds'],
               lm_seconds=round(sum(m[k]['seconds'] for k in ('lm_frozen', 'lm_unfrozen') if k in m), 1),
               clf_seconds=round(clf_s, 1), clf_steps=steps, clf_s_per_step=round(clf_s / steps, 3) if steps else None,
               lm_perplexity_before=rep.get('lm_perplexity_before'), lm_perplexity=rep.get('lm_perplexity'),
               ulmfit={k: u[k] for k in ('accuracy', 'macro_f1', 'per_class', 'confusion', 'classes', 'n', 'predict_seconds') if k in u},
               tfidf={k: b[k] for k in ('accuracy', 'macro_f1', 'C', 'n_features', 'seconds', 'seconds_by_step', 'report') if k in b},
               accuracy_points=round((u['accuracy'] - b['accuracy']) * 100, 2), macro_f1_points=round((u['macro_f1'] - b['macro_f1']) * 100, 2))
    return res

# ---------------------------------------------------------------- results
def _tiny_config(folder:Path) -> Path:
    "The TINY preset as a --config file (its IMDB-only fields left out): a smoke run in seconds, from random weights."
    import warnings
    warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')   # torch, at fastai's import
    from nlpbook_ch.ulmfit import TINY
    from nlpbook_ch.core import atomic_path
    f = Path(folder)/'tiny.json'
    with atomic_path(f) as tmp: tmp.write_text(json.dumps({k: v for k, v in TINY.items() if k not in ('n_per_label', 'lm_n_per_label', 'lm_n_unsup')}))
    return f

def _mmss(s) -> str: return '–' if s is None else f'{int(s // 60)}:{int(round(s % 60)):02d}'

def _pc(d:dict) -> str: return ', '.join(f'{k} {v:,}' for k, v in d.items())

COLUMNS = ['data set', 'rows (train / valid)', 'classes (counts)', 'ULMFiT acc / macro-F1', 'TF-IDF acc / macro-F1',
           'difference (points) acc / macro-F1', 'wall time (m:ss)', 'LM / classifier s', 'classifier s/step', 'peak RSS (MiB)']

def table_rows(res:dict) -> list:
    rows = []
    for n, s in res['sets'].items():
        r, d = s.get('run', {}), s['data']
        row = {'data set': n + (' (in-domain)' if n in IN_DOMAIN else ''), 'rows (train / valid)': f"{d['csv_rows']:,}",
               'classes (counts)': _pc(d['class_counts'])}
        if r.get('status') == 'finished':
            row.update({'rows (train / valid)': f"{d['csv_rows']:,} ({r['n_train']:,} / {r['n_valid']:,})",
                        'ULMFiT acc / macro-F1': f"{r['ulmfit']['accuracy']:.3f} / {r['ulmfit']['macro_f1']:.3f}",
                        'TF-IDF acc / macro-F1': f"{r['tfidf']['accuracy']:.3f} / {r['tfidf']['macro_f1']:.3f}",
                        'difference (points) acc / macro-F1': f"{r['accuracy_points']:+.1f} / {r['macro_f1_points']:+.1f}"})
        else: row['ULMFiT acc / macro-F1'] = f"not finished ({r.get('status', 'not run')}, exit {r.get('returncode', '–')})"
        row.update({'wall time (m:ss)': _mmss(r.get('wall_s')) + (f" ({r['attempts']} starts)" if r.get('attempts', 0) > 1 else ''),
                    'LM / classifier s': f"{r['lm_seconds']:.0f} / {r['clf_seconds']:.0f}" if 'lm_seconds' in r else '–',
                    'classifier s/step': f"{r['clf_s_per_step']:.3f}" if r.get('clf_s_per_step') else '–',
                    'peak RSS (MiB)': f"{r['peak_rss_mib']:,.0f}" if 'peak_rss_mib' in r else '–'})
        rows.append(row)
    return rows

def _per_class(r:dict) -> str:
    u, b = r['ulmfit'], r['tfidf'].get('report', {})
    out = ['| class | support | ULMFiT precision / recall / F1 | TF-IDF precision / recall / F1 |', '|---|---|---|---|']
    for c, m in u['per_class'].items():
        t = b.get('per_class', {}).get(c)
        out.append(f"| {c} | {m['support']:,} | {m['precision']:.3f} / {m['recall']:.3f} / {m['f1']:.3f} | "
                   + (f"{t['precision']:.3f} / {t['recall']:.3f} / {t['f1']:.3f} |" if t else '– |'))
    return '\n'.join(out)

def findings(res:dict) -> list:
    "Sentences on the two questions, from the numbers (nothing assumed)."
    out, fin = [], {n: s['run'] for n, s in res['sets'].items() if s.get('run', {}).get('status') == 'finished'}
    big = {n: r for n, r in fin.items() if res['sets'][n]['data']['csv_rows'] >= TARGET_ROWS}
    for n, r in big.items():
        threads = ', '.join(map(str, r['threads']))
        out.append(f"- **Time**: {n} ({res['sets'][n]['data']['csv_rows']:,} texts) took {r['wall_s'] / 60:.1f} min end to end with "
                   f"{threads} thread(s) on this machine ({res['machine']['usable_cores']} usable cores, load {res['machine']['load_at_start']} "
                   f"at the start): {'within' if r['wall_s'] <= TARGET_MINUTES * 60 else 'over'} {TARGET_MINUTES} minutes"
                   + (' (over more than one start: the sum of their times)' if r['attempts'] > 1 else '') + '.')
    if not big: out.append(f"- **Time**: no set of {TARGET_ROWS:,} texts or more was run to the end here, so the {TARGET_MINUTES}-minute figure is not measured.")
    for n, r in fin.items():
        p = r.get('progress', {})
        out.append(f"- **Progress** ({n}): {p.get('stage_lines', 0)} `done` line(s) (one per finished stage, with its number out of all), "
                   f"{p.get('bar_updates_with_time_left', 0):,} progress-bar update(s) with the time left in the current epoch or "
                   f"validation pass" + (f"; other time-left lines: {p['other_time_left_lines'][0]!r}" if p.get('other_time_left_lines')
                   else "; no estimate of the whole command's time left") + '.')
        break   # the same command: one set's log says how it reports progress
    for n, r in fin.items():
        out.append(f"- **Accuracy** ({n}{', in-domain' if n in IN_DOMAIN else ''}): ULMFiT {r['ulmfit']['accuracy']:.3f} vs TF-IDF "
                   f"{r['tfidf']['accuracy']:.3f} ({r['accuracy_points']:+.1f} points), macro-F1 {r['ulmfit']['macro_f1']:.3f} vs "
                   f"{r['tfidf']['macro_f1']:.3f} ({r['macro_f1_points']:+.1f} points): "
                   + ('ULMFiT ahead on both' if r['accuracy_points'] > 0 and r['macro_f1_points'] > 0 else
                      'the baseline ahead on both' if r['accuracy_points'] < 0 and r['macro_f1_points'] < 0 else 'neither ahead on both') + '.')
    return out

def markdown(res:dict) -> str:
    sets, m = res['sets'], res['machine']
    smoke = res['smoke']
    fin = [s['run'] for s in sets.values() if s.get('run', {}).get('status') == 'finished']
    src = res['source']
    data_lines = []
    for n, s in sets.items():
        d, st = s['data'], s['data']['parse']
        data_lines.append(f"- **{n}**: {d['what']} (`{d['file']}`, {d['bytes']:,} bytes, {d['encoding']}): {st['rows']:,} rows read "
                          f"({st['crlf_lines']:,} lines ended in CRLF; {st['empty_lines']} empty and {st['bad_lines']} malformed lines dropped"
                          + (f", e.g. {'; '.join(st['bad_examples'])}" if st['bad_examples'] else '')
                          + f"; {st['duplicate_ids']} repeated IDs; {st['stripped_texts']} texts had surrounding whitespace, removed; "
                          f"{st['double_apostrophe_texts']:,} texts with `''` as quotation marks, kept as written), mean ratings "
                          f"{d['rating_min']:+.2f} to {d['rating_max']:+.2f}"
                          + (f"; the first {d['first_rows']} rows only" if d['first_rows'] else '')
                          + (f"; {d['neutral_dropped']:,} neutral rows dropped (`--binary`)" if res['binary'] else '')
                          + f". CSV: {d['csv_rows']:,} rows ({_pc(d['class_counts'])}).")
    cfgs = sorted({(r['mode'], str(r['pretrained']), r['pretrained_model'], str(r['cpu_bf16'])) for r in fin})
    how = '; '.join(f"mode {mo}, " + (f"pretrained {p} (the project's model: `{pm}`, unless full mode finds fastai's WikiText-103 weights)"
                                          if p != 'False' else 'random weights (pretrained False)') + f", cpu_bf16 {b}"
                    for mo, p, pm, b in cfgs) or 'no run finished'
    out = ['# ULMFiT on held-out sentiment data sets: `nlpbook-ch ulmfit --data` against TF-IDF', '',
           f"Generated by `{res['cmd']}` on {m['date']}; whole run {res['total_seconds']:.0f} s (runs already finished are read, "
           "not trained again). Do not edit by hand: rerun the script.", '']
    if smoke: out += [f"**Smoke run**: the first {SMOKE_ROWS} rows of the {SMOKE_SET} set and the TINY preset (a 16-wide AWD-LSTM "
                      "from random weights): its numbers say nothing.", '']
    out += ['## Set-up', '', ' '.join(__doc__.split('\n\n')[0].split()), '',
            f"- **Data**: {src['file']} (the source distribution on PyPI; sha256 `{src['sha256']}`, {SDIST['licence']} licence); {CITATION} "
            f"The labels: mean rating > {THRESHOLD} positive, < -{THRESHOLD} negative, "
            + ('the neutral band between dropped (`--binary`: two classes).' if res['binary'] else
               'else neutral: three classes, **unbalanced** (counts below; macro-F1 weighs each class alike, accuracy each text).'),
            *data_lines,
            "- **Command**: `nlpbook-ch ulmfit --data CSV --out RUN" + (' --config tiny.json' if smoke else '')
            + (f" --mode {res['mode']}" if res['mode'] else '') + f"`, in a child process with `OMP_NUM_THREADS={res['threads']}` "
            "(torch's threads; fastai tokenises in one worker process per core whatever that is). The command reads and checks the "
            "CSV (dropping empty texts and duplicate text+label rows, with a note), holds out a seeded, stratified 10% for validation, "
            "sizes its schedule to the data (`owndata.schedule_for`), fine-tunes the language model on all the set's texts, trains the "
            "classifier by gradual unfreezing, and reports it beside TF-IDF (word 1-2 grams) + logistic regression with C chosen by "
            "5-fold cross-validation on the training part: the same split for both. The runs: " + how + '.',
            "- **The pretrained model**: the project's AWD-LSTM was pretrained on IMDB movie reviews, so the movie set is in its "
            "domain; Amazon product reviews, New York Times editorials and tweets less so.",
            "- **Measured**: wall time = `time.perf_counter()` around the whole command (start-up, reading, tokenising, training, "
            "evaluation, baseline); peak RSS = the command's own `ru_maxrss` from `os.wait4` (it includes the worker processes it "
            "waited for); 'LM / classifier s' = the stages' seconds as the run recorded them; 'classifier s/step' = the classifier "
            "stages' seconds over their optimiser steps (training texts // batch x epochs; the seconds include each epoch's validation).",
            '', '## Results', '', C.md_table(table_rows(res), COLUMNS), '']
    if not smoke: out += ['## The questions', '', *findings(res), '']
    for n, s in sets.items():
        r = s.get('run', {})
        out += [f'### {n}', '']
        if r.get('status') != 'finished':
            out += [f"Not finished ({r.get('status', 'not run')}); the end of its log:", '', '```', *r.get('log_tail', []), '```', '']
            continue
        out += [f"Run folder `{r['run']}`; {r['attempts']} start(s), {r.get('failed_attempts', 0)} failed, threads {r['threads']}.",
                f"Schedule: {r['schedule']}.", f"Language model perplexity {r['lm_perplexity_before']:.1f} before fine-tuning, "
                f"{', '.join(f'{p:.1f}' for p in r['lm_perplexity'])} after each stage. Stage seconds: "
                + ', '.join(f'{k} {v:.1f}' for k, v in r['stage_seconds'].items()) + f"; ULMFiT predicting the validation texts "
                f"{r['ulmfit'].get('predict_seconds', '–')} s; TF-IDF {r['tfidf']['seconds']:.1f} s (C {r['tfidf']['C']}, "
                f"{r['tfidf']['n_features']:,} features).", '']
        if r.get('notes'): out += ['The command\'s notes on the data: ' + ' '.join(f'`{x}`' for x in r['notes']), '']
        out += [_per_class(r), '']
    out += ['## Machine', '', C.machine_md(m), '']
    return '\n'.join(out)

def run(names, binary=False, threads=2, runs:Path|None=None, out:Path=C.RESULTS, smoke=False, sdist=None, mode=None,
        stem=None, cmd='python bench/heldout_sentiment.py', log=print) -> dict:
    "Prepare each set, run (or read) the command on it, write the results after each set; returns them."
    from nlpbook_ch.core import cache_dir
    t0 = time.perf_counter()
    info = C.machine_info()
    info.update(command_threads=threads, bench_OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS'))
    cache = cache_dir('heldout_sentiment')
    src = fetch_sdist(cache, sdist, log=log)
    runs = Path(runs) if runs is not None else cache_dir('heldout_sentiment', 'runs')
    data = prepare(names, src, cache/'data', binary=binary, smoke=smoke, log=log)
    config = _tiny_config(runs) if smoke else None
    stem = stem or 'heldout_sentiment' + ('_binary' if binary else '') + ('_smoke' if smoke else '')
    res = dict(cmd=cmd, smoke=smoke, binary=binary, threads=threads, mode=mode, sets={}, machine=info,
               source=dict(file=SDIST['file'], sha256=SDIST['sha256'], path=str(src), citation=CITATION, licence=SDIST['licence']))
    def save():
        res['total_seconds'] = round(time.perf_counter() - t0, 1)
        res['machine'] = dict(info, load_at_end=C.loadavg())
        return C.write_results(out, stem, res, markdown(res))
    for n in names:
        d = data[n]
        folder = runs/(n + ('-binary' if binary else '') + ('-smoke' if smoke else ''))
        t = train_set(d, folder, threads, config=config, mode=mode, echo=log)
        res['sets'][n] = dict(data=d, run=collect(folder, t['attempts']))
        r = res['sets'][n]['run']
        if r['status'] == 'finished':
            log(f"done  {n}: ULMFiT {r['ulmfit']['accuracy']:.4f} / {r['ulmfit']['macro_f1']:.4f}, TF-IDF {r['tfidf']['accuracy']:.4f} / "
                f"{r['tfidf']['macro_f1']:.4f} (accuracy / macro-F1); {r.get('wall_s', 0):.0f} s end to end")
        else: log(f"FAIL  {n}: the run did not finish (exit {r.get('returncode')}); see {folder/'command.log'}")
        save()
    res['path'] = str(save())
    return res

def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--sets', nargs='+', choices=list(SETS), default=list(SETS), help='which data sets (default: all four)')
    p.add_argument('--binary', action='store_true', help='drop the neutral band: positive vs negative')
    p.add_argument('--threads', type=int, default=2, help="the command's torch/OpenMP threads (OMP_NUM_THREADS; default 2)")
    p.add_argument('--runs', type=Path, default=None, help='folder for the run folders (default: the package cache, heldout_sentiment/runs; '
                   '--smoke: a new temporary folder)')
    p.add_argument('--out', type=Path, default=None, help='folder for the result files (default bench/results; --smoke: a temporary folder)')
    p.add_argument('--sdist', type=Path, default=None, help=f"a copy of {SDIST['file']} (checked by sha256) instead of downloading it")
    p.add_argument('--mode', default=None, help="passed to the command as --mode (default: none, the command's own default)")
    p.add_argument('--stem', default=None, help='result file names (default heldout_sentiment; --binary: heldout_sentiment_binary)')
    C.add_smoke(p, f'the first {SMOKE_ROWS} {SMOKE_SET} snippets, the TINY preset')
    a = p.parse_args(argv)
    if a.threads < 1: p.error('--threads must be at least 1')
    names = [SMOKE_SET] if a.smoke else list(dict.fromkeys(a.sets))
    tmp = Path(tempfile.mkdtemp(prefix='heldout_sentiment_smoke_')) if a.smoke and (a.out is None or a.runs is None) else None
    out = a.out or (tmp if a.smoke else C.RESULTS)
    runs = a.runs or (tmp/'runs' if a.smoke else None)
    cmd = ('python bench/heldout_sentiment.py' + (' --smoke' if a.smoke else '')
           + (' --sets ' + ' '.join(names) if not a.smoke and names != list(SETS) else '') + (' --binary' if a.binary else '')
           + (f' --threads {a.threads}' if a.threads != 2 else '') + (f' --mode {a.mode}' if a.mode else '')
           + (f' --runs RUNS --stem {a.stem}' if a.stem else ''))
    res = run(names, binary=a.binary, threads=a.threads, runs=runs, out=out, smoke=a.smoke, sdist=a.sdist, mode=a.mode, cmd=cmd, stem=a.stem)
    print(res['path'])
    if any(s['run']['status'] != 'finished' for s in res['sets'].values()): sys.exit(1)
    return res

if __name__ == '__main__': main()
