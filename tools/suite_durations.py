#!/usr/bin/env python
"""Per-test durations of two pytest runs side by side (from their `--durations=0` output), as a markdown table.

    python tools/suite_durations.py A.log B.log --names "GPU machine" "laptop" > table.md
"""
import argparse, re
from pathlib import Path

LINE = re.compile(r'^\s*([\d.]+)s (setup|call|teardown)\s+(\S+)')

def test_id(nodeid:str) -> str:
    "`nodeid` without the `@group` that pytest-xdist's loadgroup appends (after any parameters, as pytest-xdist reads it)."
    return nodeid[:nodeid.rfind('@')] if nodeid.rfind('@') > nodeid.rfind(']') else nodeid

def durations(text:str) -> dict:
    "Seconds per test (setup + call + teardown) from pytest's 'slowest durations' section; a run in xdist groups and one without compare."
    res = {}
    for l in text.splitlines():
        m = LINE.match(l)
        if m: k = test_id(m.group(3)); res[k] = res.get(k, 0) + float(m.group(1))
    return res

def summary(text:str) -> str:
    "pytest's final line (passed/failed counts and wall time)."
    lines = [l.strip('= ').strip() for l in text.splitlines() if re.search(r'\d+ (passed|failed)', l)]
    return lines[-1] if lines else 'no summary line'

def table(a:dict, b:dict, names) -> str:
    both = sorted(set(a) & set(b), key=lambda k: -a[k])
    rows = [f'| test | {names[0]} (s) | {names[1]} (s) | ratio |', '|---|---|---|---|']
    rows += [f'| `{k.split("::")[-1]}` | {a[k]:.1f} | {b[k]:.1f} | {a[k] / b[k]:.2f}x |' if b[k] > 0 else f'| `{k}` | {a[k]:.1f} | {b[k]:.1f} | |' for k in both]
    sa, sb = sum(a[k] for k in both), sum(b[k] for k in both)
    rows.append(f'| **sum over the {len(both)} tests in both runs** | {sa:.1f} | {sb:.1f} | {sa / sb:.2f}x |')
    return '\n'.join(rows)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('a', type=Path); p.add_argument('b', type=Path)
    p.add_argument('--names', nargs=2, default=['A', 'B'])
    a = p.parse_args(argv)
    ta, tb = a.a.read_text(), a.b.read_text()
    print(f'- {a.names[0]}: {summary(ta)} ({a.a.name})\n- {a.names[1]}: {summary(tb)} ({a.b.name})\n')
    print(table(durations(ta), durations(tb), a.names))

if __name__ == '__main__': main()
