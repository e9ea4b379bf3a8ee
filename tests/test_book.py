"""The chapters and the book: every chapter argues in four sections with no typed number; the book builds from
committed chapters without a kernel and reads cleanly in headless Chromium."""

import base64
import io
import time

import nbformat
import pytest

from helpers.core import paths
from helpers.reports.book import BookError, book_check, build_book, chapter_question, chapter_title
from helpers.records.chapters import SECTIONS, save_chapter, sections, typed_numbers
from helpers.networks.params import notebooks

CHAPTER_IDS = tuple(notebooks())


def committed_chapters() -> dict:
    """{machine: [chapter paths]} for every machine with committed chapters of the default profile."""
    root = paths.RESULTS / "default"
    return {d.parent.name: sorted(d.glob("*.ipynb")) for d in sorted(root.glob("*/chapters")) if any(d.glob("*.ipynb"))}


def test_typed_numbers_finds_numbers_and_spares_names():
    assert typed_numbers("over 5 seeds, 20 trials, 2.5x faster, 90% of it, -3 points") == ["5", "20", "2.5", "90", "3"]
    assert typed_numbers("int8, fp32, O8, ResNet-18, MobileNetV2, 3x3 and 1x1 convolutions, tucker-2, "
                         "`08_pareto`, params/studies/o8.yaml, 0/O and 1/I/L") == []
    assert typed_numbers("as 06 measured", CHAPTER_IDS) == []
    assert typed_numbers("as 06 measured") == ["06"]
    assert typed_numbers("created 2026-11-30") == ["2026", "11", "30"]


def _argues(nb, name: str) -> None:
    """The four sections in order, no typed number in the prose, the method's parameters printed by a cell."""
    assert sections(nb.cells) == list(SECTIONS), f"{name}: sections {sections(nb.cells)}"
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert typed_numbers(prose, CHAPTER_IDS) == [], f"{name} types numbers into its prose: {typed_numbers(prose, CHAPTER_IDS)}"
    heads = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## Method")]
    assert heads and "ran_with(" in nb.cells[heads[0] + 1].source, f"{name}: the method's parameters are not printed"
    result = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## Result"))
    threats = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "## Threats to validity" in c.source)
    assert any(c.cell_type == "code" for c in nb.cells[result:threats]), f"{name}: no cell generates its result"
    assert chapter_question(nb), f"{name}: the question is empty"


def test_every_chapter_argues_without_typed_numbers():
    for path in notebooks().values():
        _argues(nbformat.read(path, as_version=4), path.name)


def test_committed_chapters_argue_are_executed_and_small():
    """Every committed chapter is the notebook as it is now (same cells), executed (outputs), stamped, small."""
    for machine, books in committed_chapters().items():
        assert [p.name for p in books] == [p.name for p in notebooks().values()], machine
        for path in books:
            nb = nbformat.read(path, as_version=4)
            _argues(nb, f"{machine}/{path.name}")
            source = nbformat.read(paths.NOTEBOOKS / path.name, as_version=4)
            assert [c.source for c in nb.cells if c.cell_type == "markdown"] == \
                [c.source for c in source.cells if c.cell_type == "markdown"], f"{path.name} is older than its notebook"
            assert nb.metadata["machine"] == machine and len(nb.metadata["run_record"]) == 12
            assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name
            assert path.stat().st_size < 3_000_000, f"{path.name} is {path.stat().st_size} bytes"


def test_save_chapter_shrinks_figures_and_stamps_the_record(tmp_path):
    from PIL import Image

    buffer = io.BytesIO()
    Image.effect_noise((3000, 400), 60).convert("RGB").save(buffer, format="PNG")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("plot()", outputs=[
        nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(buffer.getvalue()).decode()})])])
    nb.cells[0].metadata["papermill"] = {"duration": 1.0}
    nb.metadata["papermill"] = {"parameters": {}}
    src = tmp_path / "09_x.ipynb"
    nbformat.write(nb, str(src))
    record = {"id": "abcdef123456", "machine": {"id": "m-1"}, "git": {"commit": "c0ffee"}}
    saved = nbformat.read(save_chapter(src, tmp_path / "chapters", record), as_version=4)
    png = Image.open(io.BytesIO(base64.b64decode(saved.cells[0].outputs[0].data["image/png"])))
    assert png.width <= 1280 and png.height == round(400 * png.width / 3000)
    assert saved.metadata["run_record"] == "abcdef123456" and saved.metadata["machine"] == "m-1"
    assert "papermill" not in saved.metadata and "papermill" not in saved.cells[0].metadata


def test_book_refuses_a_machine_without_chapters(tmp_path):
    with pytest.raises(BookError, match="machine 'no-such-machine' has no chapters of profile 'default'"):
        build_book("default", "no-such-machine", tmp_path / "site")
    with pytest.raises(BookError, match="no executed chapters of profile 'full'.*python -m helpers run --profile full"):
        build_book("full", None, tmp_path / "site")
    assert not (tmp_path / "site").exists()


def _read_in_chromium(index, shots):
    from helpers.reports.browser import chromium_paths, read_book

    if chromium_paths() is None:
        pytest.skip("headless Chromium is missing: install the Debian packages chromium and chromium-driver (make setup)")
    return read_book(index, shots)


def _check_book(index, seconds: float, shots) -> None:
    assert seconds < 120, f"the book took {seconds:.0f} s to build"
    assert book_check(index) == []
    pages = {p.name for p in index.parent.glob("*.html")}
    assert {f"{p}.html" for p in CHAPTER_IDS} <= pages and {"results.html", "run-record.html"} <= pages
    seen = _read_in_chromium(index, shots)
    assert seen["pages"] == len(pages) and seen["problems"] == [], "\n".join(seen["problems"])
    assert (shots / "index.png").stat().st_size > 10_000 and (shots / "08.png").stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.xdist_group("smoke_chain")  # one worker runs the chain once for both
def test_smoke_book_reads_cleanly_in_chromium(smoke_chain):
    """The smoke chain's chapters as a book: every page loads without console errors, every image and internal
    link resolves; screenshots of the index and chapter 08 are kept under runs/book/smoke/screenshots/."""
    assert smoke_chain.returncode == 0, smoke_chain.stdout[-2000:] + smoke_chain.stderr[-2000:]
    t0 = time.perf_counter()
    index = build_book("smoke")
    _check_book(index, time.perf_counter() - t0, index.parent / "screenshots")
    text = index.read_text()
    for nb in notebooks().values():
        assert chapter_title(nbformat.read(nb, as_version=4)) in text


@pytest.mark.slow
def test_committed_default_book_reads_cleanly_in_chromium(tmp_path):
    """The committed chapters of every machine that has them build into a book (no kernel, under two minutes)
    whose index lists O0-O8 and the studies, and which reads cleanly in headless Chromium."""
    if not committed_chapters():
        pytest.skip("no machine has committed chapters of the default profile yet (make run, then commit them)")
    for machine in committed_chapters():
        t0 = time.perf_counter()
        index = build_book("default", machine, tmp_path / machine)
        shots = paths.RUNS / "book" / "default-screenshots" / machine
        _check_book(index, time.perf_counter() - t0, shots)
        text = index.read_text()
        assert all(f"(O{i})" in text for i in range(9)), "the index does not list O0-O8"
        assert "Study <code>o8-calibrated</code>" in text and (index.parent / "results.html").exists()
