"""The Constellation service over HTTP (FastAPI), for an app in any language.

``constellation serve`` runs it on uvicorn. Under your own ASGI server::

    CONSTELLATION_PLAN=plans/production.yaml uvicorn --factory constellation.api:app_from_env

or ``create_app(load_plan(...))`` from Python. Importing this package imports FastAPI; the
command line imports it only when ``serve`` runs.
"""

from constellation.api.app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]
