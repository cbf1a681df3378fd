"""Features: frozen vectors of every doc from a GGUF model through llama.cpp, cached and resumable.

  engine.py    one loaded model in embedding mode (Embedder)
  layers.py    layer specs as a user types them (last, middle, N, 0.5, all)
  capture.py   any block's output, every requested block in one forward pass (LayerEmbedder)
  pipeline.py  texts -> features, computing only what the cache lacks (embed_texts, embed_layers)
  cache.py     the sharded, checksummed embedding store
  cluster.py   the same extraction on a Ray cluster, into the same cache

May import: errors, common, models.
"""
