"""Benchmarks: run as modules (`python -m bench.scheduler`); results and history live in bench/README.md."""
