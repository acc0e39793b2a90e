"""Writes dashboards/ingest-agent.json, the Grafana dashboard, from the panel list below.

    python dashboards/build.py          # rewrite the JSON
    python dashboards/build.py --check  # exit 1 if the JSON is out of date (the tests run this)

Every panel uses the `datasource` template variable ({"type": "prometheus", "uid":
"${datasource}"}), so the file works both imported and provisioned.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "ingest-agent.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
INBOX = 'inbox=~"$inbox",instance=~"$instance"'
INSTANCE = 'instance=~"$instance"'
RI = "$__rate_interval"

# Queue-wide series are reported by every agent sharing a queue, labelled with that queue:
# take max by queue first, so N agents on one Redis queue count its jobs once, then sum queues.
# Per-agent series (counters, watcher and worker state) add up across agents as they are.
# (title, unit, [(expr, legend)], width, kind)
PANELS: list[tuple[str, str, list[tuple[str, str]], int, str]] = [
    ("Backlog", "short", [
        (f"sum by (state) (max by (queue, inbox, state) (ingest_backlog_jobs{{{INBOX}}}))",
         "{{state}}"),
    ], 8, "timeseries"),
    ("Oldest queued job", "s", [
        (f"max by (queue) (ingest_oldest_queued_job_age_seconds{{{INSTANCE}}})", "{{queue}}"),
    ], 8, "timeseries"),
    ("Jobs by status", "short", [
        (f"sum by (status) (max by (queue, status) (ingest_jobs{{{INSTANCE}}}))", "{{status}}"),
    ], 8, "timeseries"),
    ("Throughput by outcome", "ops", [
        (f"sum by (outcome) (rate(ingest_jobs_finished_total{{{INBOX}}}[{RI}]))", "{{outcome}}"),
    ], 12, "timeseries"),
    ("Failure and timeout ratio", "percentunit", [
        (f'sum(rate(ingest_jobs_finished_total{{{INBOX},outcome=~"failed|timeout"}}[{RI}])) / '
         f"clamp_min(sum(rate(ingest_jobs_finished_total{{{INBOX}}}[{RI}])), 1e-9)", "ratio"),
    ], 12, "timeseries"),
    ("Timeouts, retries and requeues", "ops", [
        (f"sum(rate(ingest_job_timeouts_total{{{INBOX}}}[{RI}]))", "timeouts"),
        (f"sum by (reason) (rate(ingest_job_retries_total{{{INBOX}}}[{RI}]))", "retry: {{reason}}"),
        (f"sum(rate(ingest_leases_expired_total{{{INBOX}}}[{RI}]))", "leases expired"),
    ], 12, "timeseries"),
    ("Chunks indexed", "ops", [
        (f"sum(rate(ingest_chunks_indexed_total{{{INBOX}}}[{RI}]))", "chunks/s"),
        (f"sum(rate(ingest_documents_indexed_total{{{INBOX}}}[{RI}]))", "documents/s"),
        (f"sum(rate(ingest_chunks_embedded_total{{{INBOX}}}[{RI}]))", "embedded/s (as batches finish)"),
    ], 12, "timeseries"),
    ("Documents indexed by type", "ops", [
        (f"sum by (type) (rate(ingest_documents_indexed_by_type_total{{{INSTANCE}}}[{RI}]))",
         "{{type}}"),
    ], 12, "timeseries"),
    ("OCR", "short", [
        (f"sum(rate(ingest_ocr_pages_total{{{INBOX}}}[{RI}]))", "pages/s"),
        (f'sum(rate(ingest_stage_duration_seconds_sum{{{INSTANCE},stage="ocr"}}[{RI}]))',
         "share of time in OCR"),
    ], 12, "timeseries"),
    ("Job duration and wait", "s", [
        (f"histogram_quantile(0.5, sum by (le) (rate(ingest_job_duration_seconds_bucket{{{INBOX}}}[{RI}])))", "duration p50"),
        (f"histogram_quantile(0.95, sum by (le) (rate(ingest_job_duration_seconds_bucket{{{INBOX}}}[{RI}])))", "duration p95"),
        (f"histogram_quantile(0.95, sum by (le) (rate(ingest_job_wait_seconds_bucket{{{INBOX}}}[{RI}])))", "wait p95"),
    ], 12, "timeseries"),
    ("Stage duration p95", "s", [
        (f"histogram_quantile(0.95, sum by (le, stage) (rate(ingest_stage_duration_seconds_bucket{{{INSTANCE}}}[{RI}])))",
         "{{stage}}"),
    ], 12, "timeseries"),
    ("Files detected: events vs scans", "ops", [
        (f"sum by (source) (rate(ingest_files_detected_total{{{INBOX}}}[{RI}]))", "{{source}}"),
    ], 8, "timeseries"),
    ("Missed by events, found by reconcile", "short", [
        (f"sum(increase(ingest_reconcile_found_total{{{INBOX}}}[{RI}]))", "found by scan"),
        (f"sum(increase(ingest_watcher_overflows_total{{{INBOX}}}[{RI}]))", "inotify overflows"),
    ], 8, "timeseries"),
    ("Worker restarts", "short", [
        (f"sum by (reason) (increase(ingest_worker_restarts_total{{{INSTANCE}}}[{RI}]))", "{{reason}}"),
    ], 8, "timeseries"),
    ("Watcher and worker up", "short", [
        (f"ingest_watcher_up{{{INBOX}}}", "watcher {{inbox}} {{instance}}"),
        (f"ingest_worker_alive{{{INSTANCE}}}", "worker {{instance}}"),
        (f"ingest_queue_reachable{{{INSTANCE}}}", "queue {{instance}}"),
        (f'up{{job="ingest-agent",{INSTANCE}}}', "scrape {{instance}}"),
    ], 8, "stat"),
    ("Files waiting to settle", "short", [
        (f"ingest_inbox_waiting_files{{{INBOX}}}", "{{inbox}} {{instance}}"),
    ], 8, "timeseries"),
    ("Since last reconcile scan", "s", [
        (f"time() - ingest_last_scan_timestamp_seconds{{{INBOX}}}", "{{inbox}} {{instance}}"),
    ], 8, "timeseries"),
]


def panel(i: int, x: int, y: int, title: str, unit: str, targets: list[tuple[str, str]],
          width: int, kind: str) -> dict[str, Any]:
    return {
        "id": i + 1,
        "type": kind,
        "title": title,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": width, "h": 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {"refId": chr(ord("A") + n), "datasource": DS, "expr": expr, "legendFormat": legend}
            for n, (expr, legend) in enumerate(targets)
        ],
    }


def build() -> dict[str, Any]:
    panels, x, y = [], 0, 0
    for i, (title, unit, targets, width, kind) in enumerate(PANELS):
        if x + width > 24:
            x, y = 0, y + 8
        panels.append(panel(i, x, y, title, unit, targets, width, kind))
        x += width
    return {
        "uid": "ingest-agent-overview",
        "title": "ingest-agent",
        "description": "Backlog, throughput, failures, durations and watcher health of ingest-agent.",
        "tags": ["ingest-agent"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "timezone": "",
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource",
             "query": "prometheus", "current": {}, "hide": 0, "refresh": 1},
            {"name": "instance", "label": "Agent", "type": "query", "datasource": DS,
             "query": {"query": "label_values(ingest_build_info, instance)",
                       "refId": "instance"},
             "definition": "label_values(ingest_build_info, instance)",
             "includeAll": True, "multi": True, "allValue": ".*", "current": {}, "refresh": 2,
             "hide": 0, "sort": 1},
            {"name": "inbox", "label": "Inbox", "type": "query", "datasource": DS,
             "query": {"query": "label_values(ingest_jobs_finished_total, inbox)",
                       "refId": "inbox"},
             "definition": "label_values(ingest_jobs_finished_total, inbox)",
             "includeAll": True, "multi": True, "allValue": ".*", "current": {}, "refresh": 2,
             "hide": 0, "sort": 1},
        ]},
        "annotations": {"list": []},
        "panels": panels,
    }


def main() -> None:
    text = json.dumps(build(), indent=2) + "\n"
    if "--check" in sys.argv:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python dashboards/build.py")
            sys.exit(1)
        return
    OUT.write_text(text)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
