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

# Debian packages some tests need, installed here when missing (as root, or through sudo -n);
# those tests fail in CI when their package is absent: chromium for the HTML report in headless
# Chromium (tests/test_report_chromium.py), gnupg for advisory signatures, as otpatch itself
# checks them (tests/test_advisories_signatures.py).
test: $(STAMP)
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="chromium"; \
	command -v gpg >/dev/null 2>&1 || missing="$$missing gnupg"; \
	[ -z "$$missing" ] || { { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  { [ -z "$$SUDO" ] || command -v sudo >/dev/null 2>&1; } && \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } || \
	  echo "not installed:$$missing: the tests that need them will be skipped outside CI"; }
	$(BIN)/python -m pytest -q -n 2

bench: $(STAMP)
	$(BIN)/python bench/engine_overhead.py
	$(BIN)/python bench/advisory_match.py
	$(BIN)/python bench/firewall_review.py
	$(BIN)/python bench/fleet.py

clean:
	rm -rf $(VENV) .otpatch .pytest_cache
