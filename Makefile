# The two commands a fresh machine needs (see README.md).
.PHONY: setup demo test lint

setup:
	scripts/setup

demo: setup  ## the main job: serve the default world and play a scripted walk through it
	.venv/bin/worldbridge demo --out out/demo.gif

test: setup  ## lint + the whole test suite (Python, C# under Mono, GDScript static checks)
	.venv/bin/ruff check .
	.venv/bin/pytest -q

lint:
	.venv/bin/ruff check .
