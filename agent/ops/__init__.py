"""Operations: metrics, health, logs, systemd, maintenance, preflight checks and config reloads."""
