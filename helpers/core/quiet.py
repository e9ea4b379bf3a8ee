"""Library log noise off by default: TensorFlow/absl C++ info lines, torch's pytree deprecation notice,
ai-edge-quantizer's size-and-time report, litert-torch's false "converted in training mode" warning (the exporter always converts an eval-mode copy) and
tqdm.auto's notice in a kernel without ipywidgets (the chain draws no bars there; a chapter would show it as an
error box).

Set ``WORKBENCH_VERBOSE=1`` (the CLI's ``--verbose``) to see all of it. Applied when ``helpers`` is imported,
before TensorFlow or LiteRT load, because the C++ log level is read from the environment at their import.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from contextlib import contextmanager

DROPPED = ("Your model is converted in training mode",)


class _Drop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(DROPPED)


def quiet() -> None:
    """Lower the libraries' log levels unless ``WORKBENCH_VERBOSE`` is set (idempotent)."""
    if os.environ.get("WORKBENCH_VERBOSE"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow / absl C++: warnings and errors only
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="IProgress not found")
    root = logging.getLogger()
    if not any(isinstance(f, _Drop) for f in root.filters):
        root.addFilter(_Drop())


@contextmanager
def native_stderr_silenced():
    """Send file descriptor 2 to /dev/null for the block: C++ libraries write their info lines there directly,
    past Python's logging. Python exceptions still propagate; ``WORKBENCH_VERBOSE`` keeps everything."""
    if os.environ.get("WORKBENCH_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_litert_torch():
    """Import litert_torch once without the absl/oneDNN banner it prints to stderr on import."""
    if "litert_torch" not in sys.modules:
        with native_stderr_silenced():
            __import__("litert_torch")
    if not os.environ.get("WORKBENCH_VERBOSE"):
        _silence_quantizer_report()  # every call: int8_recipe may have imported litert_torch first
    return sys.modules["litert_torch"]


def _silence_quantizer_report() -> None:
    """ai-edge-quantizer prints a size-and-time report (four lines) on every ``quantize()`` it runs for the fp16 and
    dynamic references, and the chapters would keep it; litert_torch has imported it by now, so its report method is
    replaced here rather than in ``export`` (whose bytes are part of every artifact's key)."""
    progress = sys.modules.get("ai_edge_quantizer.utils.progress_utils")
    if progress is not None and hasattr(progress, "ProgressReport"):
        progress.ProgressReport.generate_progress_report = lambda self, *args, **kwargs: None


def verbose() -> None:
    """Undo :func:`quiet` for this process and its children (the CLI's ``--verbose``)."""
    os.environ["WORKBENCH_VERBOSE"] = "1"
    logging.getLogger("torch.utils._pytree").setLevel(logging.NOTSET)
    root = logging.getLogger()
    for f in [f for f in root.filters if isinstance(f, _Drop)]:
        root.removeFilter(f)


def progress_enabled() -> bool:
    """Whether progress bars are drawn: not inside the notebook chain (``WORKBENCH_PROGRESS=0``), whose executed
    notebooks would otherwise keep every bar update as output; the runner prints its own progress."""
    return os.environ.get("WORKBENCH_PROGRESS", "1") != "0"
