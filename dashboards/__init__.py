"""Grafana dashboards as code (grafana-foundation-sdk): "Pipeline health" and "Business".

``python -m dashboards`` writes their JSON where the Kubernetes grafana component provisions
it from (``k8s/components/grafana/dashboards/``); ``--check`` fails if the committed JSON
differs from what the code generates.
"""
