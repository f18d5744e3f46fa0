"""Everything about one Asterisk: its AMI session, config store, inventory, read model and list
publisher, wired together by :class:`ispbx.pbx.pbx.Pbx`."""
