"""Sentence embeddings of free text (project descriptions), from a model shipped in a package.

The model is WordLlama's ``l2_supercat`` at 256 dimensions: a table of token vectors
(32,000 x 256, 16 MB) and its tokenizer, both shipped *inside* the ``wordllama`` wheel from the
package registry. A text's vector is the mean of its tokens' vectors, scaled to unit length, so
the cosine of two vectors is their dot product. Nothing is ever downloaded: the two files are
read from the installed package with the registry's loader bypassed (it would look in a cache
and then fetch from a model hub), and a missing file means "fit by meaning is off", never a
fetch.

This module sits at the bottom of the package (beside :mod:`matcher.text`) because both the
engine and the independent verifier read it: the model is an input like numpy, while the score
formula built on top of it is stated in each of them separately.

Texts are embedded in batches, once per process and text: vectors are cached by a hash of the
model and the text (the text itself is never kept). A :class:`VectorStore` given to
:func:`set_store` (the workspace keeps one in its database) is asked before the model and told
every new vector, so a re-plan of the same intake embeds nothing again.

Descriptions are personal free text: nothing here logs, raises or returns them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # numpy loads only when a text is embedded: importing the verifier stays light
    import numpy as np
    from numpy.typing import NDArray

log = logging.getLogger("matcher")

#: The package that ships the model, the weights file and the tokenizer file inside it.
MODEL_PACKAGE = "wordllama"
WEIGHTS_FILE = ("weights", "l2_supercat_256.safetensors")
TOKENIZER_FILE = ("tokenizers", "l2_supercat_tokenizer_config.json")
WEIGHTS_KEY = "embedding.weight"
#: Names the model in cache keys and in the plan's notes.
MODEL_ID = "wordllama-l2_supercat-256"
#: Texts tokenised and pooled together; bounds the pooling's temporary arrays.
BATCH = 1024
#: Vectors kept in memory (about 1 KB each).
CACHE_SIZE = 50_000


class VectorStore(Protocol):
    """Somewhere to keep vectors between runs (the workspace's database), keyed by
    :func:`text_key` (a hash: the text itself is never given to the store)."""

    def get_vectors(self, keys: Sequence[str]) -> Mapping[str, NDArray[np.float32]]:
        """The vectors held for any of ``keys``."""
        ...

    def put_vectors(self, vectors: Mapping[str, NDArray[np.float32]]) -> None:
        """Keep these vectors."""
        ...


@dataclass(frozen=True)
class _Model:
    table: NDArray[np.float32]  # vocabulary x dimension
    tokenizer: Any


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.model: _Model | None = None
        self.unavailable: str | None = None  # why the model cannot be loaded, once known
        self.cache: OrderedDict[str, NDArray[np.float32]] = OrderedDict()
        self.store: VectorStore | None = None


_state = _State()


def text_key(text: str) -> str:
    """The cache key of ``text``: a hash of the model and the text."""
    return hashlib.sha256(f"{MODEL_ID}\x00{text}".encode()).hexdigest()


class SQLiteVectorStore:
    """A :class:`VectorStore` in a SQLite file (the web app keeps one in its workspace folder):
    one table of (key, vector) rows, the key a hash of the model and the text, the vector its
    float32 bytes; the text is never stored. Each call opens its own connection, so solves in
    several threads may share one store. The file is private to the user (mode 600): vectors
    are derived from personal free text."""

    TABLE = "description_vectors"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with closing(self._connect()) as con, con:
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {self.TABLE} "
                "(key TEXT PRIMARY KEY, vector BLOB NOT NULL)"
            )
        os.chmod(self.path, 0o600)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30.0)

    def get_vectors(self, keys: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        import numpy as np  # lazy: numpy, once a text is embedded

        out: dict[str, NDArray[np.float32]] = {}
        with closing(self._connect()) as con:
            for start in range(0, len(keys), 500):  # SQLite's bound on query parameters
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = con.execute(
                    f"SELECT key, vector FROM {self.TABLE} WHERE key IN ({marks})", chunk
                )
                for key, blob in rows:
                    out[key] = np.frombuffer(blob, dtype=np.float32).copy()
        return out

    def put_vectors(self, vectors: Mapping[str, NDArray[np.float32]]) -> None:
        import numpy as np  # lazy: numpy, once a text is embedded

        with closing(self._connect()) as con, con:
            con.executemany(
                f"INSERT OR REPLACE INTO {self.TABLE} (key, vector) VALUES (?, ?)",
                [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in vectors.items()],
            )


def set_store(store: VectorStore | None) -> None:
    """Use ``store`` (or none) as the persistent cache of vectors."""
    with _state.lock:
        _state.store = store


def _load() -> _Model | None:
    """The packaged model, loaded once; None (with the reason in ``_state.unavailable``) when
    the package or its files are missing. Never touches the network: the files are opened from
    the installed package and the tokenizer is built from its file."""
    if _state.model is not None or _state.unavailable is not None:
        return _state.model
    import numpy as np  # lazy: numpy, once a text is embedded

    try:
        from safetensors.numpy import load_file  # lazy: only once a text is embedded
        from tokenizers import Tokenizer  # lazy: only once a text is embedded

        root = resources.files(MODEL_PACKAGE)
        weights = root.joinpath(*WEIGHTS_FILE)
        tokenizer_file = root.joinpath(*TOKENIZER_FILE)
        with resources.as_file(weights) as path:
            table = load_file(str(path))[WEIGHTS_KEY].astype(np.float32)
        with resources.as_file(tokenizer_file) as path:
            tokenizer = Tokenizer.from_file(str(path))
        tokenizer.no_padding()
        tokenizer.no_truncation()
    except Exception as exc:
        # Any failure to load the optional model turns fit by meaning off, with the reason;
        # the exception's text names files, never a description.
        _state.unavailable = (
            f"the sentence-embedding model could not be loaded ({type(exc).__name__}); "
            f"install the '{MODEL_PACKAGE}' package"
        )
        log.warning("project fit by meaning is off: %s", _state.unavailable)
        return None
    _state.model = _Model(table, tokenizer)
    return _state.model


def available() -> bool:
    """Whether the model is installed and loads (loading it if needed)."""
    with _state.lock:
        return _load() is not None


def unavailable_reason() -> str | None:
    """Why fit by meaning is off (None when the model loads)."""
    with _state.lock:
        _load()
        return _state.unavailable


def _pool(model: _Model, texts: list[str]) -> NDArray[np.float32]:
    """Unit-length mean token vectors of ``texts`` (zero for a text with no token).

    The mean is a product of a (texts x distinct tokens) count matrix with those tokens'
    vectors, so each batch costs one small matrix product instead of a gather of every token's
    vector."""
    import numpy as np  # lazy: numpy, once a text is embedded

    dim = model.table.shape[1]
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for start in range(0, len(texts), BATCH):
        chunk = texts[start : start + BATCH]
        encodings = model.tokenizer.encode_batch(chunk, add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(chunk))
        total = int(lengths.sum())
        if total == 0:
            continue
        ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int64, count=total)
        rows = np.repeat(np.arange(len(chunk), dtype=np.int64), lengths)
        tokens, column = np.unique(ids, return_inverse=True)
        counts = np.bincount(
            rows * len(tokens) + column, minlength=len(chunk) * len(tokens)
        ).reshape(len(chunk), len(tokens))
        sums = counts.astype(np.float32) @ model.table[tokens]
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        np.divide(sums, norms, out=sums, where=norms > 0)
        out[start : start + len(chunk)] = sums
    return out


def embed(texts: Iterable[str]) -> NDArray[np.float32] | None:
    """Unit vectors of ``texts`` (one row each, in order), or None when the model is not
    available. Each distinct text is embedded once per process (and once per store)."""
    import numpy as np  # lazy: numpy, once a text is embedded

    texts = list(texts)
    with _state.lock:
        model = _load()
        if model is None:
            return None
        keys = [text_key(t) for t in texts]
        found: dict[str, NDArray[np.float32]] = {}
        for k in keys:
            v = _state.cache.get(k)
            if v is not None:
                found[k] = v
                _state.cache.move_to_end(k)
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing and _state.store is not None:
            held = _state.store.get_vectors(missing)
            found.update({k: np.asarray(v, dtype=np.float32) for k, v in held.items()})
            missing = [k for k in missing if k not in found]
        if missing:
            want = set(missing)
            todo: dict[str, str] = {}
            for k, t in zip(keys, texts, strict=True):
                if k in want and k not in todo:
                    todo[k] = t
            vectors = _pool(model, list(todo.values()))
            new = dict(zip(todo, vectors, strict=True))
            found.update(new)
            if _state.store is not None:
                _state.store.put_vectors(new)
        for k in dict.fromkeys(keys):
            _state.cache[k] = found[k]
            _state.cache.move_to_end(k)
        while len(_state.cache) > CACHE_SIZE:
            _state.cache.popitem(last=False)
        if not texts:
            return np.zeros((0, model.table.shape[1]), dtype=np.float32)
        return np.stack([found[k] for k in keys])


def clear_cache() -> None:
    """Forget the in-memory vectors (tests; the store, if any, keeps its own)."""
    with _state.lock:
        _state.cache.clear()
