"""The product: one package per domain. Imports neither starlette, strawberry, apscheduler, schema nor jobs."""
