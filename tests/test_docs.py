"""The docs site built from the repository's own notebooks, checked in its HTML (no browser needed).

The executed copy is made up, so that the test takes a second instead of a chapter run: it is the first
notebook that has both an exported function and a flagged cell (`#| cuda`, `#| online`...), with its
plain code cells marked as run, a figure in the first one, and the flagged cells left unrun, as
`nlpbook-ch chapter` leaves them on a machine without a GPU.
"""
import html as H, json, os, re
from pathlib import Path
import nbformat, pytest, yaml
from nlpbook_ch.docs import FLAG_REASONS, build_docs, cell_directives, docs_notebooks, exported_defs, page_title

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

def test_sidebar_follows_sidebar_yml(site):
    listed = yaml.safe_load((ROOT/'nbs'/'sidebar.yml').read_text())['website']['sidebar']['contents']
    nav = _between((site['out']/'index.html').read_text(), '<nav class="sidebar">', '</nav>')
    expected = ['index.html' if n == 'index.ipynb' else n.replace('.ipynb', '.html') for n in listed]
    assert re.findall(r'href="([^"]+)"', nav)[:len(expected)] == expected
    assert [p.name for p in site['pages']][:len(expected)] == expected

def test_titles_and_prev_next(site):
    pages = site['pages']
    for i, p in enumerate(pages):
        html = p.read_text()
        title = page_title(nbformat.read(ROOT/'nbs'/(p.stem + '.ipynb'), as_version=4))[0]
        assert f'<title>{title} – nlpbook_ch</title>' in html and f'<h1 class="title">{title}</h1>' in html
        prev, nxt = (re.search(f'<a class="{k}" href="([^"]+)">', html) for k in ('prev', 'next'))
        assert (prev and prev[1]) == (pages[i - 1].name if i > 0 else None)
        assert (nxt and nxt[1]) == (pages[i + 1].name if i + 1 < len(pages) else None)

def test_toc_lists_the_sections_and_functions(site):
    toc = _between(site['page'], '<nav class="toc">', '</nav>')
    heads = [l[3:].strip() for c in site['nb'].cells if c.cell_type == 'markdown' for l in c.source.splitlines() if l.startswith('## ')]
    assert heads and all(f'>{h.replace("`", "")}</a>' in H.unescape(toc) for h in heads), (heads, toc[:2000])
    assert f'<a href="#{_public_defs(site["nb"])[0]["name"]}">' in toc

def test_signature_of_an_exported_function(site):
    d = _public_defs(site['nb'])[0]
    block = _between(site['page'], f'<h4 class="sig-name" id="{d["name"]}">', '</div></div>')
    assert f'<code>{H.escape(d["sig"])}</code>' in block
    assert '<summary>Exported source</summary>' in site['page'] and '#| export' not in site['page']

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
