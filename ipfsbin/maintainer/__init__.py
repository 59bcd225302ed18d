"""The maintainer's side of a signed index: local state, curation, commits, audit views.

Modules: ``workspace`` (SQLite state of one index), ``curate`` (add, yank),
``chain`` (init, commit, co-sign), ``history`` (log, show, diff),
``repro`` (reproducibility view), ``verify`` (whole-chain check),
``gitexport`` (pygit2 audit mirror), ``pins`` (Kubo pins as the head moves).
Formats are described in ``schema/maintainer.md``.
"""
