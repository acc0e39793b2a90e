"""Search: embed the query with the ingesting model and rank indexed chunks (CLI and API)."""

from __future__ import annotations

from agent.config import Settings
from agent.pipeline.index import SearchHit, open_index


class Searcher:
    """Holds the model and the index's vector cache, so repeated searches are fast."""

    def __init__(self, settings: Settings) -> None:
        from agent.pipeline.embed import Embedder

        self.index = open_index(settings)
        self.embedder = Embedder(settings.embedding, settings.agent.data_dir)

    def search(self, query: str, k: int = 5, inbox: str | None = None) -> list[SearchHit]:
        vector = self.embedder.embed([query])[0]
        return self.index.search(vector, k=k, inbox=inbox)
