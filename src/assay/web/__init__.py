"""The web app: upload a table, pick its columns, run an audit, read the report.

`create_app` builds the Starlette application; ``assay serve`` runs it with uvicorn.
"""

from assay.web.app import MAX_UPLOAD_BYTES, create_app

__all__ = ["MAX_UPLOAD_BYTES", "create_app"]
