"""Chapters: the executed notebooks as a reader gets them (saved per machine), their method tables, and the rule
that no number is typed into a chapter's prose."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

from helpers.core import paths

#: The sections every chapter argues in, in this order (markdown headings ``## <name>``).
SECTIONS = ("Question", "Method", "Result", "Threats to validity")
#: Widest figure kept in a saved chapter (pixels): screen resolution, so a chapter stays small enough to commit.
MAX_PNG_WIDTH = 1280

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_BAR = re.compile(r"\d+%\|")  # a tqdm progress line: "  4%|▎   | 1/28 [00:33<15:13, ...]"


def chapters_dir(profile: str, machine_id: str) -> Path:
    """Where a profile's executed chapters are kept for ``machine_id`` (default: results/, committed; smoke: runs/)."""
    return paths.results_dir(profile, machine_id) / "chapters"


def typed_numbers(markdown: str, chapter_ids: tuple[str, ...] = ()) -> list[str]:
    """The numbers typed into ``markdown``: every run of digits that is not part of a name.

    Digits inside a word (``int8``, ``fp32``, ``O8``, ``08_pareto``, ``3x3``), after a letter and a hyphen
    (``ResNet-18``) or in a path (``params/studies/o8.yaml``) name something and are not counted; a speed-up
    such as ``2x`` or ``2.5x`` is. A standalone chapter number in ``chapter_ids`` (``06``) is a cross-reference.
    Returns the offending tokens in order.
    """
    found = []
    for m in _NUMBER.finditer(markdown):
        before = markdown[max(0, m.start() - 2):m.start()]
        after = markdown[m.end():m.end() + 2]
        if before[-1:] and (before[-1].isalnum() or before[-1] in "_./\\"):
            continue
        if before[-1:] == "-" and before[:1].isalpha():
            continue
        if after[:1] == "x" and after[1:2].isdigit():
            continue
        if after[:1] and (after[0].isalpha() and after[0] != "x" or after[0] in "_/"):
            continue
        if after[:1] == "x" and after[1:2].isalpha():
            continue
        if m.group(0) in chapter_ids:
            continue
        found.append(m.group(0))
    return found


def sections(cells) -> list[str]:
    """The ``## `` headings of a notebook's markdown cells that name one of :data:`SECTIONS`, in order."""
    out = []
    for c in cells:
        if c.cell_type != "markdown":
            continue
        for line in c.source.splitlines():
            name = line[3:].strip() if line.startswith("## ") else None
            if name in SECTIONS:
                out.append(name)
    return out


def ran_with(prefix: str, namespace: dict):
    """The method's parameters as this run used them: a markdown table (parameter, value, meaning) built from the
    notebook's parameters cell (names and trailing comments) and the values in ``namespace`` (the kernel's globals,
    after Papermill injected the profile's values). So the numbers a chapter's method states are never typed."""
    import papermill as pm
    from IPython.display import Markdown

    from helpers.networks.params import notebooks

    from helpers.core.identity import machine
    from helpers.records.provenance import record_path

    book = notebooks()[prefix]
    profile = namespace.get("profile")
    try:
        record = json.loads(record_path(profile).read_text())["id"] if profile else None
    except (OSError, ValueError, KeyError):
        record = None
    rows = ["| parameter | value | meaning |", "| --- | --- | --- |"]
    for name, info in pm.inspect_notebook(str(book)).items():
        value = namespace.get(name, "(not set)")
        rows.append(f"| `{name}` | `{_cell(repr(value))}` | {_cell(info.get('help') or '')} |")
    where = f"machine `{machine()['id']}`" + (f", run record `{record}`" if record else ", no run record yet")
    return Markdown(f"**Ran with** (the parameters cell of {book.name}, profile `{profile}`, {where}):\n\n"
                    + "\n".join(rows))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def save_chapter(executed: Path, out_dir: Path, record: dict) -> Path:
    """Copy an executed notebook into ``out_dir`` as a reader's chapter: figures shrunk to screen resolution
    (:data:`MAX_PNG_WIDTH`), progress bars that libraries draw on stderr dropped (every update would be a line;
    any other stderr stays), Papermill's per-cell timings dropped (they would change every line on every run),
    and the run record's id, machine and commit in its metadata. Written atomically; returns the path."""
    import nbformat

    from helpers.core.io import atomic_path

    nb = nbformat.read(str(executed), as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        outputs = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                data["image/png"] = _shrunk_png(data["image/png"])
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                output["text"] = without_progress_bars(output["text"])
                if not output["text"].strip():
                    continue
            outputs.append(output)
        if cell.cell_type == "code":
            cell.outputs = outputs
    nb.metadata.pop("papermill", None)
    nb.metadata["run_record"] = record["id"]
    nb.metadata["machine"] = record["machine"]["id"]
    nb.metadata["commit"] = record["git"]["commit"]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / executed.name
    with atomic_path(path) as tmp:
        nbformat.write(nb, str(tmp))
    return path


def without_progress_bars(text: str) -> str:
    """``text`` (a stream) without its tqdm progress lines; every other line is kept as it was."""
    lines = re.split(r"(?<=\n)|\r", text)
    return "".join(line for line in lines if not _BAR.search(line))


def _shrunk_png(encoded: str) -> str:
    """A base64 PNG no wider than :data:`MAX_PNG_WIDTH` (Pillow, which matplotlib already needs)."""
    from PIL import Image

    raw = base64.b64decode(encoded)
    image = Image.open(io.BytesIO(raw))
    if image.width <= MAX_PNG_WIDTH:
        return encoded
    height = round(image.height * MAX_PNG_WIDTH / image.width)
    buffer = io.BytesIO()
    image.resize((MAX_PNG_WIDTH, height), Image.LANCZOS).save(buffer, format="PNG", optimize=True)
    if buffer.tell() >= len(raw):  # smaller on screen but not on disk: keep the original
        return encoded
    return base64.b64encode(buffer.getvalue()).decode("ascii") + "\n"
