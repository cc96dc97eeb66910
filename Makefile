# Two commands on a fresh Debian/Ubuntu machine: `make app` (the designer on SQLite, no Redis) and
# `make test` (the whole suite). Each creates .venv and installs what it needs, once.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PORT   ?= 8501
ADDRESS ?= 127.0.0.1

.PHONY: app test install system-deps lint bench clean canvas

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,postgres]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# Only the tests need these: Graphviz's `dot` renders SVG/PNG (the app draws in the browser), Chromium drives
# the end-to-end browser tests. Installed with apt when missing and we are root; `make app` never installs them.
system-deps:
	@missing=""; \
	command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing with apt"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "note: missing$$missing; install with: sudo apt-get install$$missing (tests that need them skip)"; \
	  fi; \
	fi

install: $(STAMP)

# The app on http://localhost:$(PORT) (`make app PORT=8600` for another port). Its data (saved designs, the demo
# database with its virtual clock) lives in $$WAOOAW_DATA_DIR, default ~/.local/share/waooaw: see app/config.py.
app: install
	$(BIN)/streamlit run app/Home.py --server.headless true --server.port $(PORT) --server.address $(ADDRESS)

test: install system-deps
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: install system-deps
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python bench/engine_throughput.py
	$(BIN)/python bench/timer_firing.py
	$(BIN)/python bench/simulator_speed.py

# The Designer's BPMN canvas (bpmn-js) is bundled with esbuild into app/components/bpmn_canvas/static, which is
# committed: `make app` needs no npm. Rebuild after changing its frontend/ sources or lockfile (a test checks).
CANVAS := app/components/bpmn_canvas/frontend
canvas:
	cd $(CANVAS) && npm ci --no-audit --no-fund && node build.mjs

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
