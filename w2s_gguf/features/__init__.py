"""Features: frozen vectors of every doc from a GGUF model through llama.cpp, cached and resumable;
and prompt scores (next-token log-probs of label words), cached the same way.

  engine.py    one loaded model in llama.cpp's embedding mode (Embedder: the whole graph, bench's yardstick)
  layers.py    layer specs as a user types them (last, middle, N, 0.5, all)
  capture.py   the extraction engine: every requested layer from one forward pass that stops after the
               deepest one (LayerEmbedder)
  pipeline.py  texts -> features, computing only what the cache lacks (embed_texts, embed_layers)
  cache.py     the sharded, checksummed embedding store
  cluster.py   the same extraction on a Ray cluster, into the same cache
  scoring.py   one loaded model with logits: label-word log-probs after prompts sharing a prefix (Scorer, Vocab)
  prompts.py   a task's prompting form as strings, prompt groups and their tokens
  prompt_scores.py  prompt groups -> cached, resumable log-probs (score_groups)
  score_cluster.py  the same scoring on a Ray cluster, into the same cache

May import: errors, common, models.
"""
