"""Shared building blocks of the CDP DAGs (settings, assets, alerts, gates, secrets).

This folder is listed in `dags/.airflowignore`: Airflow imports it from the DAG files (the
DAGs folder is on `sys.path` in every Airflow process) but never parses it for DAGs.
"""
