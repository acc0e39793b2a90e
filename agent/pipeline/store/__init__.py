"""The index: the contract both stores keep, the embedded SQLite one and the shared Postgres one."""
