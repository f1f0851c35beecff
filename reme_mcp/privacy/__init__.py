"""Keeping private data private: secret redaction before storage."""
