"""Small data files the runtime needs (the canonical face layout)."""
