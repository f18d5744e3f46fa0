"""``make bench``: ISPBX Manager against Asterisk's ARI on the same lab (see run_bench.py)."""
