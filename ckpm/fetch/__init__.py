"""Downloads: mirrors, verification, resume (see ckpm/fetch/download.py)."""
