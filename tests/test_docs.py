"""The docs site built from the repository's own notebooks: checked in its HTML, then in a real browser.

The HTML tests use a made-up executed copy, so that they take seconds instead of a chapter run: it is the
first notebook that has both an exported function and a flagged cell (`#| cuda`, `#| online`...), with its
plain code cells marked as run, a figure in the first one, and the flagged cells left unrun, as
`nlpbook-ch chapter` leaves them on a machine without a GPU.

The browser tests build the site from a real executed run (`run_chapter(..., only=['00_core', 'index'])`)
and load every page in headless Chromium, driven over the DevTools protocol on a pipe (no extra Python
package). They skip, saying why, where Chromium is not installed (`.ci/run` installs Debian's `chromium`).
"""
import base64, html as H, io, json, os, re, select, shutil, subprocess, time
from pathlib import Path
from urllib.parse import unquote, urlparse
import nbformat, pytest, yaml
from nlpbook_ch.docs import (FLAG_REASONS, _sidebar_entries, build_docs, cell_directives, check_site, docs_notebooks,
                             exported_defs, page_title)

ROOT = Path(__file__).resolve().parents[1]
PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='

def _flagged(c): return c.cell_type == 'code' and any(f in cell_directives(c)[0] for f in FLAG_REASONS)

def _public_defs(nb):
    return [d for c in nb.cells if c.cell_type == 'code' and 'export' in cell_directives(c)[0]
            for d in exported_defs(cell_directives(c)[1]) if d['kind'] == 'def']

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('docs')
    nb_path = next(p for p in docs_notebooks() if (nb := nbformat.read(p, as_version=4)) and _public_defs(nb) and any(map(_flagged, nb.cells)))
    nb = nbformat.read(nb_path, as_version=4)
    plain = [c for c in nb.cells if c.cell_type == 'code' and not cell_directives(c)[0]]
    for i, c in enumerate(plain): c.execution_count = i + 1
    plain[0].outputs = [nbformat.v4.new_output('display_data', data={'image/png': PNG, 'text/plain': '<Figure>'})]
    (tmp/'run').mkdir()
    nbformat.write(nb, tmp/'run'/nb_path.name)
    (tmp/'run'/'figures.json').write_text(json.dumps({'mode': 'quick'}))
    old = os.umask(0o077)   # the pages must be world-readable whatever the umask
    try: pages = build_docs(tmp/'site', executed=tmp/'run')
    finally: os.umask(old)
    return dict(out=tmp/'site', pages=pages, nb=nb, name=nb_path.stem, page=(tmp/'site'/f'{nb_path.stem}.html').read_text())

def _between(page, start, end): return page[page.index(start):page.index(end, page.index(start))]

def _listed():
    "The notebooks sidebar.yml lists, in its order, with their sections."
    cfg = yaml.safe_load((ROOT/'nbs'/'sidebar.yml').read_text())
    return list(_sidebar_entries(cfg['website']['sidebar']['contents']))

def test_sidebar_follows_sidebar_yml(site):
    nav = _between((site['out']/'index.html').read_text(), '<nav class="sidebar">', '</nav>')
    expected = ['index.html' if n == 'index.ipynb' else n.replace('.ipynb', '.html') for n, _ in _listed()]
    assert re.findall(r'href="([^"]+)"', nav)[:len(expected)] == expected
    assert [p.name for p in site['pages']][:len(expected)] == expected
    for sec in dict.fromkeys(s for _, s in _listed() if s): assert f'<li class="section">{H.escape(sec)}</li>' in nav

def test_chapter_pages_come_before_the_library():
    "The chapter (pretraining, ULMFiT, GPT-2) is read first: its pages precede every page that documents library code only."
    order = [p.stem for p in docs_notebooks()]
    chapter = [order.index(n) for n in ('03_pretrain', '04_ulmfit', '05_gpt2')]
    library = [i for i, n in enumerate(order) if n not in ('index', '03_pretrain', '04_ulmfit', '05_gpt2')]
    assert order[0] == 'index' and chapter == sorted(chapter) and max(chapter) < min(library), order

def test_titles_and_prev_next(site):
    pages = site['pages']
    for i, p in enumerate(pages):
        html = p.read_text()
        title = page_title(nbformat.read(ROOT/'nbs'/(p.stem + '.ipynb'), as_version=4))[0]
        assert f'<title>{H.escape(title)} – nlpbook_ch</title>' in html and f'<h1 class="title">{H.escape(title)}</h1>' in html
        prev, nxt = (re.search(f'<a class="{k}" href="([^"]+)">', html) for k in ('prev', 'next'))
        assert (prev and prev[1]) == (pages[i - 1].name if i > 0 else None)
        assert (nxt and nxt[1]) == (pages[i + 1].name if i + 1 < len(pages) else None)

def test_toc_lists_the_sections_and_functions(site):
    toc = _between(site['page'], '<nav class="toc">', '</nav>')
    heads = [l[3:].strip() for c in site['nb'].cells if c.cell_type == 'markdown' for l in c.source.splitlines() if l.startswith('## ')]
    assert heads and all(f'>{h.replace("`", "")}</a>' in H.unescape(toc) for h in heads), (heads, toc[:2000])
    assert f'<a href="#{_public_defs(site["nb"])[0]["name"]}">' in toc

def test_every_toc_entry_has_its_own_anchor(site):
    "No two headings of a page share an id (repeated titles are numbered), and every TOC entry points at an id of its page."
    for p in site['pages']:
        page = p.read_text()
        toc = re.findall(r'href="#([^"]+)"', _between(page, '<nav class="toc">', '</nav>'))
        ids = re.findall(r'<h[1-6][^>]*\sid="([^"]+)"', page)
        assert len(ids) == len(set(ids)), (p.name, [i for i in ids if ids.count(i) > 1])
        assert len(toc) == len(set(toc)) and set(toc) <= set(ids), p.name

def test_no_broken_link_or_image(site):
    assert check_site(site['out']) == []

def test_signature_of_an_exported_function(site):
    d = _public_defs(site['nb'])[0]
    block = _between(site['page'], f'<h4 class="sig-name" id="{d["name"]}">', '</div></div>')
    assert f'<code>{H.escape(d["sig"])}</code>' in block
    assert '<summary>Exported source</summary>' in site['page'] and '#| export' not in site['page']

def test_signatures_link_to_their_source_lines(site):
    "Each `source` link names the generated module and a line that defines that name there."
    links = re.findall(r'<h4 class="sig-name" id="([^"]+)">.*?</h4><a class="sig-src" href="([^"]+)"', site['page'])
    assert len(links) >= len(_public_defs(site['nb'])) > 0
    for name, url in links:
        m = re.fullmatch(r'https://github\.com/nlpbook-ch/nlpbook_ch/blob/main/(nlpbook_ch/\w+\.py)#L(\d+)', url)
        assert m, url
        lines = (ROOT/m[1]).read_text().splitlines()[int(m[2]) - 1:]
        first = next(l for l in lines if not l.startswith('@'))
        assert re.match(rf'(async def|def|class) {name}\b|{name}\s*[:=]', first), (name, url, first)

def test_search_index_holds_pages_sections_and_names(site):
    index = json.loads((site['out']/'search.json').read_text())
    js = (site['out']/'search.js').read_text()
    assert json.loads(js[js.index('=') + 1:js.index(';\n')]) == index
    urls = {e['url'] for e in index}
    assert {p.name for p in site['pages']} <= urls
    assert {f"{site['name']}.html#{d['name']}" for d in _public_defs(site['nb'])} <= urls
    assert all(e['title'] and e['kind'] in ('page', 'section', 'api') for e in index)
    assert '<input type="search" id="search"' in site['page'] and '<script src="search.js"></script>' in site['page']

def test_badges_on_flagged_cells_that_did_not_run(site):
    shown = [c for c in site['nb'].cells if _flagged(c) and 'hide' not in cell_directives(c)[0]]
    assert site['page'].count('<div class="badge skipped"') == len(shown) > 0

def test_figure_from_the_executed_copy(site):
    src = re.search(r'<img class="fig" src="(figures/[^"]+\.png)"', site['page'])[1]
    assert (site['out']/src).read_bytes().startswith(b'\x89PNG')

def test_home_page_images_and_hidden_cells(site):
    home = (site['out']/'index.html').read_text()
    for img in re.findall(r'src="(images/[^"]+)"', home): assert (site['out']/img).is_file()
    assert 'outputs from a quick-mode run in run/' in home
    assert not any('nbdev.showdoc' in p.read_text() for p in site['pages'])   # `#| hide` cells stay hidden

def test_files_are_world_readable(site):
    files = list(site['out'].rglob('*'))
    assert {oct(f.stat().st_mode & 0o777) for f in files if f.is_file()} == {'0o644'}
    assert {oct(f.stat().st_mode & 0o777) for f in [site['out'], *files] if f.is_dir()} == {'0o755'}

def test_missing_executed_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist: create it with `nlpbook-ch chapter --out'):
        build_docs(tmp_path/'site', executed=tmp_path/'nope')

# ---------------------------------------------------------------------------------------------------------------
# In a real browser: headless Chromium over the DevTools protocol (--remote-debugging-pipe: JSON messages ending
# in a NUL byte; the browser reads commands on its fd 3 and answers on its fd 4).

try: import fcntl   # POSIX: the pipe's file descriptors
except ImportError: fcntl = None
CHROMIUM = os.environ.get('CHROMIUM') or next(filter(None, map(shutil.which, ('chromium', 'chromium-browser', 'google-chrome'))), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None or fcntl is None, reason='Chromium is not installed (Debian: apt-get install chromium; '
                                    'or set CHROMIUM=/path/to/chrome), or this is not a POSIX system')

class Browser:
    "A headless Chromium with one tab, driven over the DevTools protocol on a pipe."
    def __init__(self, profile, timeout=60):
        cmd_r, self._w = os.pipe()    # we write commands, the browser reads them on its fd 3
        self._r, ans_w = os.pipe()    # the browser writes on its fd 4, we read
        def fds():   # in the child: the pipe ends as fds 3 and 4, inheritable (copied above 9 first: a pipe may already be 3 or 4)
            a, b = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10), fcntl.fcntl(ans_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3); os.dup2(b, 4)
        self.proc = subprocess.Popen(
            [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
             '--disable-sync', '--no-first-run', '--disable-extensions', f'--user-data-dir={profile}', '--remote-debugging-pipe',
             '--window-size=1280,900', 'about:blank'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False, preexec_fn=fds)
        os.close(cmd_r); os.close(ans_w)
        self.timeout, self.buf, self.n, self.events = timeout, b'', 0, []
        target = self.send('Target.createTarget', url='about:blank')['targetId']
        self.session = self.send('Target.attachToTarget', targetId=target, flatten=True)['sessionId']
        for domain in ('Page', 'Runtime'): self.send(f'{domain}.enable', session=self.session)

    def _message(self):
        deadline = time.monotonic() + self.timeout
        while b'\0' not in self.buf:
            if not select.select([self._r], [], [], max(0, deadline - time.monotonic()))[0]: raise TimeoutError('Chromium did not answer')
            chunk = os.read(self._r, 1 << 20)
            if not chunk: raise RuntimeError(f'Chromium closed the pipe (exit code {self.proc.poll()})')
            self.buf += chunk
        msg, self.buf = self.buf.split(b'\0', 1)
        return json.loads(msg)

    def send(self, method, session=None, **params):
        self.n += 1
        os.write(self._w, json.dumps({'id': self.n, 'method': method, 'params': params, **({'sessionId': session} if session else {})}).encode() + b'\0')
        while (m := self._message()).get('id') != self.n: self.events.append(m)
        if 'error' in m: raise RuntimeError(f'{method}: {m["error"]}')
        return m['result']

    def goto(self, url):
        "Open `url` in the tab and wait for its load event (images included)."
        self.events = [e for e in self.events if e.get('method') != 'Page.loadEventFired']
        res = self.send('Page.navigate', session=self.session, url=url)
        assert 'errorText' not in res, (url, res)
        while not any(e.get('method') == 'Page.loadEventFired' for e in self.events): self.events.append(self._message())

    def js(self, expression):
        "The value of a JavaScript expression (a promise is awaited) in the open page."
        res = self.send('Runtime.evaluate', session=self.session, expression=expression, returnByValue=True, awaitPromise=True)
        if 'exceptionDetails' in res: raise RuntimeError(f"{expression[:60]}...: {res['exceptionDetails']}")
        return res['result'].get('value')

    def errors(self): return [e['params']['exceptionDetails'] for e in self.events if e.get('method') == 'Runtime.exceptionThrown']

    def close(self):
        try: self.send('Browser.close')
        except (RuntimeError, TimeoutError, OSError): pass
        try: self.proc.wait(10)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        os.close(self._r); os.close(self._w)

PAGE_FACTS = '''(async () => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  return {
    images: imgs.map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]),
    links: [...document.querySelectorAll('a[href], link[href]')].map(a => a.href),
    toc: [...document.querySelectorAll('nav.toc a')].map(a => [a.getAttribute('href'), !!document.getElementById(decodeURIComponent(a.hash.slice(1)))]),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    search: typeof window.siteSearch === 'function' && !!document.getElementById('search'),
  };
})()'''

def _search(b, query):
    "Type `query` into the page's search box; the results' URLs."
    return b.js(f'''(() => {{ const box = document.getElementById('search'); box.value = {json.dumps(query)};
        box.dispatchEvent(new Event('input')); return [...document.querySelectorAll('#search-results a')].map(a => a.href); }})()''')

@pytest.fixture(scope='module')
def executed_site(tmp_path_factory):
    "A site built from a real executed run of the home page and `00_core`, with one figure drawn by matplotlib in `00_core`."
    from nlpbook_ch.chapter import run_chapter
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    tmp = tmp_path_factory.mktemp('browser')
    run_chapter(tmp/'run', 'quick', only=['00_core', 'index'], log=lambda *a: None)
    nb = nbformat.read(tmp/'run'/'00_core.ipynb', as_version=4)
    fig, ax = plt.subplots(figsize=(2, 1.5)); ax.plot([0, 1], [1, 0])
    buf = io.BytesIO(); fig.savefig(buf, format='png'); plt.close(fig)
    cell = next(c for c in nb.cells if c.cell_type == 'code' and c.execution_count and not cell_directives(c)[0])
    cell.outputs.append(nbformat.v4.new_output('display_data', data={'image/png': base64.b64encode(buf.getvalue()).decode(), 'text/plain': '<Figure>'}))
    nbformat.write(nb, tmp/'run'/'00_core.ipynb')
    pages = build_docs(tmp/'site', executed=tmp/'run')
    return dict(out=tmp/'site', pages=pages, profile=tmp/'profile')

@pytest.fixture(scope='module')
def browser(executed_site):
    if CHROMIUM is None or fcntl is None: pytest.skip('Chromium is not installed, or this is not a POSIX system')
    b = Browser(executed_site['profile'])
    yield b
    b.close()

@needs_chromium
def test_every_page_in_a_browser(executed_site, browser):
    "Every page: its images load, its internal links reach a file of the site and an id there, its TOC entries an id on it; no script error."
    out, facts = executed_site['out'], {}
    for p in executed_site['pages']:
        browser.goto(p.as_uri())
        facts[p.name] = browser.js(PAGE_FACTS)
    n_img = sum(len(f['images']) for f in facts.values())
    assert n_img >= 1 and any(src.startswith('figures/') for f in facts.values() for src, _ in f['images'])   # a figure saved by the build
    for name, f in facts.items():
        assert f['search'], name
        assert [src for src, ok in f['images'] if not ok] == [], name
        assert f['toc'] and [a for a, ok in f['toc'] if not ok] == [], name
        for url in f['links']:
            u = urlparse(url)
            if u.scheme != 'file': continue
            target = Path(unquote(u.path))
            assert target.is_file() and target.is_relative_to(out), (name, url)
            if u.fragment and target.suffix == '.html': assert unquote(u.fragment) in facts[target.name]['ids'], (name, url)
    assert browser.errors() == []

@needs_chromium
def test_search_finds_a_documented_function(executed_site, browser):
    "Typing a documented name into the search box lists its signature first; following the result lands on it."
    nb = nbformat.read(ROOT/'nbs'/'00_core.ipynb', as_version=4)
    name = _public_defs(nb)[-1]['name']
    browser.goto((executed_site['out']/'index.html').as_uri())
    hits = _search(browser, name)
    assert hits and hits[0].endswith(f'00_core.html#{name}'), hits[:3]
    assert _search(browser, 'zzz no such words qqq') == []
    browser.goto(hits[0])
    assert browser.js(f'document.getElementById({json.dumps(name)}).className') == 'sig-name'
    assert browser.errors() == []
