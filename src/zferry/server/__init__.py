"""zferry-server: a REST API over zferry's engine and pipelines (optional extra `zferry[server]`).

Only `app` and `cli` import FastAPI/uvicorn; the rest of the package (tasks, paths, requests) is
plain Python, unit-tested without them.
"""
