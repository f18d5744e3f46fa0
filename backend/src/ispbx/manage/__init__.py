"""Changing PJSIP configuration safely: Asterisk's own option rules, edits, the apply pipeline."""
