# The two commands of the README: `make demo` and `make test`. Each creates or reuses
# .venv and installs what it needs; nothing else has to be set up by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/otpatch demo

# tests/test_report_chromium.py checks the HTML report in headless Chromium: Debian's package,
# installed here when missing (as root, or through sudo -n); it fails in CI when absent.
# tests/test_advisories_signatures.py needs Debian's gnupg, as otpatch does to check advisory
# signatures: installed the same way when gpg is missing, and the same rule in CI.
test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  { [ -z "$$SUDO" ] || command -v sudo >/dev/null 2>&1; } && \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
	  echo "chromium not installed: the Chromium report test will be skipped outside CI"
	@command -v gpg >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  { [ -z "$$SUDO" ] || command -v sudo >/dev/null 2>&1; } && \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnupg; } || \
	  echo "gnupg not installed: the advisory signature tests will be skipped outside CI"
	$(BIN)/python -m pytest -q -n 2

bench: $(STAMP)
	$(BIN)/python bench/engine_overhead.py
	$(BIN)/python bench/advisory_match.py
	$(BIN)/python bench/firewall_review.py

clean:
	rm -rf $(VENV) .otpatch .pytest_cache
