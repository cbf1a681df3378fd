"""Shared fixture: SmolLM2-135M last-token features of real sentiment docs (cached by the embedding store)."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def sentiment_features(smollm2):
    """(X_train (400, d), y_train, X_test (200, d), y_test) for Rotten Tomatoes reviews."""
    from w2s_gguf.features.pipeline import embed_texts
    from w2s_gguf.tasks import load_task

    data = load_task("sentiment", n_train=400, n_test=200)
    docs = data.train + data.test
    X = np.asarray(embed_texts(smollm2, [d.text for d in docs], progress=False).features, dtype=np.float32)
    y = np.array([d.label for d in docs])
    return X[:400], y[:400], X[400:], y[400:]
