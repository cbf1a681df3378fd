"""What every stage may use: files on disk (atomic writes, checksums, locks, the cache folder), the plugin
registry of tasks and methods, the hub reachability check, files that PyPI packages carry, and
silencing llama.cpp's logs.

May import: errors. Nothing here knows about models, features or the protocol.
"""
