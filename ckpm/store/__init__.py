"""The store: safe unpacking and content-addressed prefixes."""
