"""Changing an admin's PJSIP configuration in place: a lossless document model of the files,
edits that touch only the lines they must, and (later) the pipeline that validates, writes,
reloads and confirms them."""
