"""The agent's settings: one TOML file, validated by pydantic, overridable from the environment."""
