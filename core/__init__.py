"""Shared core of the pipeline: the record envelope, ids, batching, settings and AWS client factories.

Everything here is used by both the ingest side and the consumers, so it lives once.
"""
