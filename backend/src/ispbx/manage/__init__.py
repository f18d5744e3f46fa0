"""Managing endpoints: lossless edits of the admin's own pjsip.conf files, validated by Asterisk's
option table, written atomically, reloaded, read back, and rolled back when they did not take."""
