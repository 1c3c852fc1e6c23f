# lorad: `make run` starts lorad on the default model, `make test` runs the whole suite.
# Both install what they need (apt packages as root, the model from PyPI) before building.
# One build configuration for everything (release with testing enabled), so that CI compiles once:
# unoptimised Swift runs the model tens of times slower.

SWIFT ?= swift
BUILD_FLAGS := -c release -Xswiftc -enable-testing
MODEL ?= models/SmolLM2-135M-Instruct.Q4_1.gguf
BIN := .build/release/lorad

.PHONY: all deps model build run test clean

all: build

deps:
	@scripts/install-deps

model: deps
	@scripts/fetch-model

build: deps
	$(SWIFT) build $(BUILD_FLAGS) --product lorad

# The daemon in the foreground on ./run/lorad.sock with adapters/; Ctrl-C drains and stops it.
SOCKET := run/lorad.sock
run: model build
	@mkdir -p run
	@echo "lorad: serving $(MODEL) and adapters/ on $(SOCKET) (Ctrl-C stops it). Try, in another terminal:"
	@echo "  curl --unix-socket $(SOCKET) http://lorad/v1/chat/completions -H 'Content-Type: application/json' \\"
	@echo "    -d '{\"model\": \"demo\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}]}'"
	@echo "  $(BIN) ask --socket $(SOCKET) --model base 'What is the capital of France?'"
	exec $(BIN) serve --model $(MODEL) --adapters adapters --socket $(SOCKET)

# --disable-xctest: the suites use Swift Testing only. scripts/test-venv makes the Python environment
# of the OpenAI-client test (pinned openai + httpx from PyPI) and prints its interpreter.
test: model
	$(SWIFT) build $(BUILD_FLAGS) --build-tests
	LORAD_TEST_PYTHON=$$(scripts/test-venv) && \
	LORAD_TEST_MODEL=$(CURDIR)/$(MODEL) LORAD_BIN=$(CURDIR)/$(BIN) LORAD_TEST_PYTHON=$$LORAD_TEST_PYTHON \
	  $(SWIFT) test $(BUILD_FLAGS) --skip-build --disable-xctest

clean:
	rm -rf .build

# `make install`: the binary, the systemd units, the configuration and the service user.
# PREFIX (default /usr/local) is where the binary goes; DESTDIR stages everything under another root
# (packaging, or a harmless trial: make install DESTDIR=/tmp/stage). Units go where systemd looks
# for them: $(PREFIX)/lib/systemd/system for PREFIX /usr or /usr/local (both on systemd's search
# path), /etc/systemd/system for any other PREFIX. The unit's ExecStart is rewritten to the
# installed binary. An existing /etc/lorad/lorad.toml is never overwritten. The "lorad" user comes
# from sysusers.d; systemd-sysusers runs only for a real install (empty DESTDIR).
PREFIX ?= /usr/local
ifneq ($(filter /usr /usr/local,$(PREFIX)),)
UNITDIR ?= $(PREFIX)/lib/systemd/system
else
UNITDIR ?= /etc/systemd/system
endif
SYSUSERSDIR ?= /usr/lib/sysusers.d
CONFDIR ?= /etc/lorad

.PHONY: install uninstall

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/lorad
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|^ExecStart=/usr/local/bin/lorad |ExecStart=$(PREFIX)/bin/lorad |' systemd/lorad.service \
	  > $(DESTDIR)$(UNITDIR)/lorad.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/lorad.service
	install -m 0644 systemd/lorad.socket $(DESTDIR)$(UNITDIR)/lorad.socket
	install -D -m 0644 systemd/lorad.sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/lorad.conf
	@if [ -e $(DESTDIR)$(CONFDIR)/lorad.toml ]; then \
	  echo "keeping the existing $(DESTDIR)$(CONFDIR)/lorad.toml (the new example is config/lorad.toml)"; \
	else \
	  install -D -m 0644 config/lorad.toml $(DESTDIR)$(CONFDIR)/lorad.toml; \
	  echo "installed $(DESTDIR)$(CONFDIR)/lorad.toml"; \
	fi
	@if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null 2>&1; then \
	  systemd-sysusers $(SYSUSERSDIR)/lorad.conf; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "next: copy a model to /var/lib/lorad/models/ (see model.path in $(CONFDIR)/lorad.toml), then"
	@echo "      systemctl enable --now lorad.socket lorad.service; usermod -aG lorad <client user>"

# Removes what `install` put in place except the configuration and /var/lib/lorad (models, adapters).
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/lorad $(DESTDIR)$(UNITDIR)/lorad.service $(DESTDIR)$(UNITDIR)/lorad.socket \
	  $(DESTDIR)$(SYSUSERSDIR)/lorad.conf
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "kept $(DESTDIR)$(CONFDIR)/lorad.toml, /var/lib/lorad and the lorad user"
