"""The web page for the people who drop files: upload, live jobs, search and documents.

Server-rendered (Jinja2, autoescaped) with a little plain JavaScript from ``static/`` that adds
upload progress and live rows; every page works without it. Served by the agent's HTTP server
beside the JSON API, under a strict Content-Security-Policy.
"""

from agent.web.pages import mount_pages

__all__ = ["mount_pages"]
