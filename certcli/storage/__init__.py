"""Where certcli keeps certificates, keys and state: the Storage protocol (protocol.py)
and its implementation on files (files.py)."""
