"""Tools around the pipeline: `doctor` (what this machine and llama.cpp build can do) and `bench`
(throughput against llama.cpp's own).

May import: everything below cli.
"""
