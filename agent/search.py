"""Search: embed the query with the ingesting model and rank indexed chunks (CLI and API)."""

from __future__ import annotations

from agent.config import Settings
from agent.pipeline.index import SearchHit
from agent.pipeline.stores import open_index


class Searcher:
    """Holds the model and the index's vector cache, so repeated searches are fast."""

    def __init__(self, settings: Settings, *, readonly: bool = False) -> None:
        """``readonly``: a short-lived reader (the CLI) that must create nothing."""
        from agent.pipeline.embed import Embedder

        self.index = open_index(settings, readonly=readonly)
        self.embedder = Embedder(settings.embedding, settings.agent.data_dir, readonly=readonly)

    def search(self, query: str, k: int = 5, inbox: str | None = None) -> list[SearchHit]:
        vector = self.embedder.embed([query])[0]
        return self.index.search(vector, k=k, inbox=inbox)
