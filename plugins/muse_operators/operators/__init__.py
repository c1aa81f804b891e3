"""The Airflow layer: thin operators over the domain core. The only package code that imports Airflow."""
