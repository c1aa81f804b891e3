"""muse_operators: reduce VLT/MUSE data with ESO's esorex recipes, orchestrated by Apache Airflow.

The package is the domain core (recipe parameters, SOFs, products, synthetic data) plus a thin Airflow
layer in :mod:`muse_operators.operators`. Only that subpackage (and ``dags/``) imports Airflow, so
everything else can be used and tested without an Airflow installation.
"""

__version__ = "0.1.0"
