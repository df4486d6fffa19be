# lua2pipe: `make run` serves the example through pdns on 127.0.0.1:5300, `make test` runs every test.
# Both install what they need: Debian's PowerDNS packages (with apt-get, when run as root and
# missing) and the Python environment in .venv.

VENV      := .venv
PYTHON    := $(VENV)/bin/python
# Debian's python3 when present: an interpreter every user can run (pdns starts lua2pipe as its
# own unprivileged user), unlike one under root's home.
SYSTEM_PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
DEB_PACKAGES := pdns-server pdns-backend-pipe pdns-backend-remote pdns-backend-lua2 pdns-backend-sqlite3 pdns-tools dnsperf bind9-dnsutils python3-venv lua-check
RUN_PORT  ?= 5300
EXAMPLE   ?= examples/geo.lua

# StyLua, the Lua formatter make lint checks with: its npm build (WebAssembly inside the package,
# nothing downloaded at install or run time), run by tools/stylua.mjs with Node.js.
STYLUA_VERSION := 2.5.2
STYLUA     := $(VENV)/stylua/node_modules/@johnnymorganz/stylua/package.json
LUA_FORMATTED := lua/environment.lua lua/content.lua lua/dispatch.lua

.PHONY: setup system-packages test lint format run run-remote bench profile soak fuzz-long clean

setup: system-packages $(VENV)/.installed $(STYLUA)

# Installs the Debian packages that are missing; without root it only says what is missing.
system-packages:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	    for s in pdns pdns-server; do systemctl stop $$s 2>/dev/null || true; done; \
	  else \
	    echo "missing Debian packages:$$missing (run make as root, or apt-get install them)"; \
	  fi; \
	fi

$(VENV)/.installed: pyproject.toml
	$(SYSTEM_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	touch $@

# Node.js and npm come with this project's machines; elsewhere Debian's packages (as root).
$(STYLUA): $(VENV)/.installed
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
	npm install -s --no-save --no-audit --no-fund --prefix $(VENV)/stylua @johnnymorganz/stylua@$(STYLUA_VERSION)
	touch $@

test: lint
	$(PYTHON) -m pytest -q -n 2

lint: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy
	luacheck --no-color -q lua examples bench
	node tools/stylua.mjs --check $(LUA_FORMATTED)

# Formats lua2pipe's own Lua in the style make lint checks (.stylua.toml).
format: setup
	node tools/stylua.mjs $(LUA_FORMATTED)

run: setup
	$(PYTHON) examples/serve.py --port $(RUN_PORT) $(EXAMPLE)

# The DNSSEC-signed example through pdns's remote backend (README, "Remote mode").
run-remote: setup
	$(PYTHON) examples/serve.py --remote --port $(RUN_PORT) examples/signed.lua

bench: setup
	$(PYTHON) bench/run.py

# Where the time goes: a cost ladder per question and LuaJIT's profiler (see bench/README.md).
profile: setup
	$(PYTHON) bench/profile.py

# 2 million questions through one coprocess, RSS every 100k; fails on > 5 % growth after warm-up.
soak: setup
	$(PYTHON) bench/soak.py

# Coverage-guided fuzzing of question handling with atheris (installed on first use) for
# FUZZ_SECONDS; a failing input is written to bench/out/fuzz/ as crash-*. make test runs a
# bounded hypothesis fuzz (tests/test_fuzz.py).
FUZZ_SECONDS ?= 300
fuzz-long: setup
	$(PYTHON) -c 'import atheris' 2>/dev/null || $(PYTHON) -m pip install -q atheris
	mkdir -p bench/out/fuzz/corpus
	cd bench/out/fuzz && ../../../$(PYTHON) ../../../tests/fuzz/fuzz_coprocess.py \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=4096 corpus ../../../tests/fuzz/seeds

clean:
	rm -rf $(VENV) *.egg-info build .pytest_cache .ruff_cache .hypothesis
