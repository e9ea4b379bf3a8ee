"""The book: a static HTML site of one machine's executed chapters, the answer, the docs pages, the results and the
study reports.

Chapters are rendered by nbconvert's lab template (``data_files/book/chapter.html.j2`` drops its CDN scripts, so
the book reads offline and needs no kernel); the other pages are markdown rendered by mistune, nbconvert's own
renderer. Every link and image that points into the repository is copied into the site, so the site stands alone.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

from helpers.core import paths
from helpers.records.chapters import SECTIONS, chapters_dir

TEMPLATES = Path(__file__).resolve().parents[1] / "data_files" / "book"
TITLE = "Latency-aware compression for edge inference"


class BookError(ValueError):
    """A book that cannot be built from what is committed (said in one sentence with the fix)."""


def book_machine(profile: str, machine: str | None = None) -> str:
    """The machine whose chapters make the book: ``machine`` if given, else this machine when it has chapters,
    else the machine of record (``answer.MACHINE_OF_RECORD``) when it has them, else the one with the newest run
    record. Raises BookError when none has."""
    from helpers.analysis.answer import MACHINE_OF_RECORD
    from helpers.core.identity import machine as this_machine

    have = sorted(p.parent.name for p in paths.results_dir(profile, "_").parent.glob("*/chapters") if any(p.glob("*.ipynb")))
    if machine is not None:
        if machine not in have:
            raise BookError(f"machine {machine!r} has no chapters of profile {profile!r} "
                            f"(have: {', '.join(have) or 'none'}); run `make run` there, or pick one of those")
        return machine
    if not have:
        raise BookError(f"no executed chapters of profile {profile!r} are there yet; run `python -m helpers run --profile "
                        f"{profile}` (it saves them under {paths.portable(chapters_dir(profile, '<machine>'))})")
    here = this_machine()["id"]
    if here in have:
        return here
    if MACHINE_OF_RECORD in have:
        return MACHINE_OF_RECORD
    return max(have, key=lambda m: _record(paths.results_dir(profile, m)).get("created", ""))


def build_book(profile: str = "default", machine: str | None = None, out: Path | None = None) -> Path:
    """Render the book of ``profile`` for one machine (see :func:`book_machine`) into ``out`` (default
    runs/book/<profile>/), replacing what was there. Returns the index page. Raises BookError on missing chapters."""
    import nbformat

    machine = book_machine(profile, machine)
    out = Path(out) if out is not None else paths.RUNS / "book" / profile
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    site = _Site(out, profile, machine)
    books = sorted(chapters_dir(profile, machine).glob("*.ipynb"))
    chapters = [(p, nbformat.read(str(p), as_version=4)) for p in books]
    docs = _doc_pages() if profile != "smoke" else []
    site.pages = ["index.html", *(_page_name(p) for p, _ in chapters), "results.html", "run-record.html",
                  *(f"doc-{p.stem}.html" for p in docs)]
    studies = _study_folders() if profile != "smoke" else []
    site.pages += [f"study-{f.parent.name}-{f.name}.html" for f in studies]
    for i, (path, nb) in enumerate(chapters):
        prev = _page_name(chapters[i - 1][0]) if i else "index.html"
        nxt = _page_name(chapters[i + 1][0]) if i + 1 < len(chapters) else "results.html"
        site.chapter(path, nb, prev, nxt)
    site.markdown_page("results.html", "Results", _results_markdown(profile), paths.ROOT,
                       "Each machine's section names its machine and run record.")
    site.markdown_page("run-record.html", "Run records", _records_markdown(profile, machine, chapters), paths.ROOT,
                       f"The run records of the chapters of machine <code>{html.escape(machine)}</code>.")
    for page in docs:
        text = page.read_text().splitlines()
        site.markdown_page(f"doc-{page.stem}.html", text[0].lstrip("# "), text[1:], page.parent,
                           f"<code>{html.escape(paths.portable(page))}</code> as committed.")
    for folder in studies:
        site.markdown_page(f"study-{folder.parent.name}-{folder.name}.html", f"Study {folder.parent.name}",
                           _study_markdown(folder), folder,
                           f"Every number on this page: machine <code>{html.escape(folder.name)}</code>, the run "
                           f"records in <code>{html.escape(paths.portable(folder))}/</code>.")
    site.markdown_page("index.html", TITLE, _index_markdown(profile, machine, chapters, studies, docs), paths.ROOT,
                       f"The chapters of machine <code>{html.escape(machine)}</code>, profile <code>{html.escape(profile)}</code>.")
    return out / "index.html"


def _doc_pages() -> list[Path]:
    """The docs pages the README points to, except docs/results.md (the book's results page is made from the same
    tables by the same report)."""
    return [p for p in sorted(paths.DOCS.glob("*.md")) if p.stem != "results"]


def _page_name(chapter: Path) -> str:
    return chapter.stem[:2] + ".html"


def _record(folder: Path) -> dict:
    try:
        return json.loads((folder / "run_record.json").read_text())
    except (OSError, ValueError):
        return {}


def _study_folders() -> list[Path]:
    from helpers.search.store import StudyLayout, TableLayout

    root = paths.RESULTS / "study"
    return sorted(layout.folder for layout in StudyLayout.committed(root) + TableLayout.committed(root))


def chapter_title(nb) -> str:
    """A chapter's title: the first line of its first markdown cell, without the ``#``."""
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    return first.source.splitlines()[0].lstrip("# ").strip()


def chapter_question(nb) -> str:
    """The first paragraph under a chapter's ``## Question`` heading ('' when there is none)."""
    for c in nb.cells:
        if c.cell_type == "markdown" and "## Question" in c.source:
            text = c.source.split("## Question", 1)[1].strip()
            return text.split("\n\n", 1)[0].split("\n## ", 1)[0].replace("\n", " ")
    return ""


def _index_markdown(profile, machine, chapters, studies, docs=()) -> list[str]:
    from helpers.reports.report import build_answer

    answer = ["## The answer", "", build_answer(), ""] if profile != "smoke" else []
    lines = [f"# {TITLE}", "", readme_hypothesis(paths.README), "", *answer,
             f"The chapters below are the executed notebooks of profile `{profile}` as committed for machine "
             f"`{machine}` (under `{paths.portable(chapters_dir(profile, machine))}`); each names its run record at "
             "its foot. Rebuild this book with `make book`; re-run the chain with `make run`.", "", "## Chapters", ""]
    for path, nb in chapters:
        lines.append(f"- [{chapter_title(nb)}]({_page_name(path)}): {chapter_question(nb)}")
    lines += ["", "## Results and studies", "", "- [Results of the default profile, every machine](results.html) "
              "(docs/results.md, generated)"]
    lines += [f"- [Study `{f.parent.name}` on machine `{f.name}`](study-{f.parent.name}-{f.name}.html)" for f in studies]
    lines += [f"- [{p.read_text().splitlines()[0].lstrip('# ')}](doc-{p.stem}.html)" for p in docs]
    lines += ["- [Run records of these chapters](run-record.html)", ""]
    return lines


def readme_hypothesis(readme: Path) -> str:
    """The README's opening paragraph that states the hypothesis (the book's index opens with it)."""
    paragraphs = readme.read_text().split("\n\n")
    found = next((p for p in paragraphs if "hypothesis" in p.lower() and not p.startswith("#")), None)
    if found is None:
        raise BookError(f"{paths.portable(readme)} has no paragraph that states the hypothesis; the book's index opens with it")
    return found


def _results_markdown(profile: str) -> list[str]:
    from helpers.reports.report import build_report

    return [f"# Results of profile `{profile}`", "", build_report(profile) if profile != "smoke" else
            "The smoke profile's tables stay under runs/ and are not reported (a smoke run checks the code, not the hypothesis)."]


def _records_markdown(profile, machine, chapters) -> list[str]:
    from helpers.records.provenance import summary

    ids = sorted({nb.metadata.get("run_record", "?") for _, nb in chapters})
    rec = _record(paths.results_dir(profile, machine))
    lines = ["# Run records", "", f"The chapters of machine `{machine}` name {len(ids)} run record(s): "
             f"{', '.join(f'`{i}`' for i in ids)}.", ""]
    if rec:
        lines += [f"## `{rec.get('id')}` (the latest chain on `{machine}`)", "", summary(rec), "",
                  f"Profile `{rec.get('profile')}`, created {rec.get('created')}, Python {rec.get('python')}; "
                  "the packages:", "", "| package | version |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in sorted(rec.get("packages", {}).items())]
    stale = [i for i in ids if i != rec.get("id")]
    if stale:
        lines += ["", f"Chapters with another run record ({', '.join(stale)}) were executed by an earlier chain on this "
                  "machine (a partial run with `--only`); their record is no longer committed beside them."]
    return lines


def _study_markdown(folder: Path) -> list[str]:
    from helpers.reports.report import study_section
    from helpers.reports.table_report import table_section
    from helpers.search.store import StudyLayout

    body = study_section(folder) if StudyLayout(folder).meta.exists() else table_section(folder)
    figures = [f"![{png.stem}](figures/{png.name})" for png in sorted((folder / "figures").glob("*.png"))]
    return [*body, "", *(["### Figures", "", *figures] if figures else [])]


def _code(text) -> str:
    return f"<code>{html.escape(str(text))}</code>"


class _Site:
    """The pages of one book, their shared navigation and the files they link to (copied under ``files/``)."""

    def __init__(self, out: Path, profile: str, machine: str):
        self.out, self.profile, self.machine, self.pages = out, profile, machine, []
        self.chapters = chapters_dir(profile, machine).resolve()
        self.css = (TEMPLATES / "book.css").read_text()

    def nav(self, prev: str | None = None, nxt: str | None = None) -> str:
        links = [f'<a class="book-title" href="index.html">{html.escape(TITLE)}</a>']
        if prev:
            links.append(f'<a rel="prev" href="{prev}">&larr; previous</a>')
        if nxt:
            links.append(f'<a rel="next" href="{nxt}">next &rarr;</a>')
        links += ['<a href="results.html">results</a>', '<a href="run-record.html">run records</a>']
        return f'<nav class="book-nav">{" ".join(links)}</nav>'

    def footer(self, said: str) -> str:
        """The page's foot: where its numbers come from (``said``, HTML), and how the book was built."""
        return (f'<footer class="book-footer">{said} Built by <code>make book</code> from the committed files; see '
                '<a href="run-record.html">the run records</a>.</footer>')

    def chapter_source(self, record: str | None) -> str:
        return (f"Every number on this page: run record {_code(record)}, machine {_code(self.machine)}, profile "
                f"{_code(self.profile)}.")

    def chapter(self, path: Path, nb, prev: str, nxt: str) -> None:
        from nbconvert import HTMLExporter

        from traitlets.config import Config

        config = Config()
        config.TagRemovePreprocessor.enabled = True
        # the defaults and Papermill's injected values: the method's table (ran_with) shows what ran, with meanings
        config.TagRemovePreprocessor.remove_cell_tags = {"parameters", "injected-parameters"}
        exporter = HTMLExporter(config=config, template_name="lab", extra_template_paths=[str(TEMPLATES)],
                                template_file="chapter.html.j2")
        resources = {"book": {"css": self.css, "nav": self.nav(prev, nxt),
                              "footer": self.footer(self.chapter_source(nb.metadata.get("run_record")))}}
        body, _ = exporter.from_notebook_node(nb, resources=resources)
        self._write(_page_name(path), body, paths.NOTEBOOKS)

    def markdown_page(self, name: str, title: str, lines: list[str], base: Path, source: str) -> None:
        import jinja2
        import mistune

        render = mistune.create_markdown(plugins=["table", "strikethrough"], escape=False)
        page = jinja2.Template((TEMPLATES / "page.html.j2").read_text(), autoescape=False).render(
            title=html.escape(title), css=self.css, nav=self.nav(), body=render("\n".join(lines)),
            footer=self.footer(source))
        self._write(name, page, base)

    def _write(self, name: str, text: str, base: Path) -> None:
        (self.out / name).write_text(self._localise(text, base), encoding="utf-8")

    def _localise(self, text: str, base: Path) -> str:
        """Point every relative link and image at a copy inside the site: a notebook at its chapter page, a file
        of the repository at ``files/<its path>``; a folder link keeps its text only. A missing target stays as it
        is (the book's test names it)."""
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(text, "html.parser")
        for tag, attr in (("a", "href"), ("img", "src")):
            for el in soup.find_all(tag):
                url = el.get(attr)
                if not url or url.startswith(("#", "data:", "mailto:")) or ":" in url.split("/")[0]:
                    continue
                target, _, fragment = url.partition("#")
                if target in self.pages:
                    continue
                found = (base / target).resolve()
                if found.suffix == ".ipynb" and found.parent in (paths.NOTEBOOKS.resolve(), self.chapters) \
                        and found.stem[:2] + ".html" in self.pages:
                    el[attr] = found.stem[:2] + ".html" + (f"#{fragment}" if fragment else "")
                elif found.is_dir():
                    el.unwrap()
                elif found.is_file():
                    rel = Path("files") / paths.portable(found).lstrip("/")
                    (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(found, self.out / rel)
                    el[attr] = rel.as_posix() + (f"#{fragment}" if fragment else "")
        return str(soup)


def book_check(index: Path) -> list[str]:
    """Static checks of a built book (what a browser test also sees): every chapter page has the four sections
    (:data:`helpers.records.chapters.SECTIONS`) as headings. Returns one sentence per problem."""
    problems = []
    for page in sorted(index.parent.glob("[0-9][0-9].html")):
        text = page.read_text()
        problems += [f"{page.name} has no '{s}' section" for s in SECTIONS if f">{s}<" not in text]
    return problems
