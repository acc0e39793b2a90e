"""Search: the engine, what its answers are judged on, and the ways people reach it."""
