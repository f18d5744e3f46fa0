"""Prometheus metrics: ``GET /metrics`` rendered at scrape time from live state.

``exporter.MetricsExporter`` (built in the lifespan, one registry per app) renders the fleet-level
families through prometheus_client (``collector``) and the per-endpoint ones with a cached writer
(``endpoints``); ``activity`` counts what happens between scrapes (registration events, state
changes, qualify RTTs), ``writes`` the management writes (by result, rollbacks, apply time),
``http`` is the request middleware, ``flapping`` the extension point for
the history's flap detector. Nothing here imports at package level, so ``ispbx.pbx`` may use
``activity`` without a cycle.
"""
