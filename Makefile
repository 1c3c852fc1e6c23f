# lorad: `make run` starts lorad on the default model, `make test` runs the whole suite.
# Both install what they need (apt packages as root, the model from PyPI) before building.
# One build configuration for everything (release with testing enabled), so that CI compiles once:
# unoptimised Swift runs the model tens of times slower.

SWIFT ?= swift
BUILD_FLAGS := -c release -Xswiftc -enable-testing
MODEL ?= models/SmolLM2-135M-Instruct.Q4_1.gguf
BIN := .build/release/lorad

# The distribution build, for `make install` and `make deb`: release without -enable-testing, with
# the Swift standard library and Foundation linked statically, so the installed binary needs only
# libc, libstdc++, libopenblas, libuv and libedit (scripts/check-binary-deps holds the allow-list). Its own
# scratch path, since different flags in .build would rebuild everything each time one switches.
# --disable-local-rpath: no RUNPATH at all (SwiftPM otherwise adds $ORIGIN, which would let a library
# dropped beside /usr/bin/lorad win over the system's). scripts/make-dist strips the binary and
# generates the shell completions and man pages into $(DIST).
DIST_SCRATCH := .build-dist
DIST_BUILD_FLAGS := -c release --static-swift-stdlib --disable-local-rpath --scratch-path $(DIST_SCRATCH)
DIST := $(DIST_SCRATCH)/dist
DEB_ROOT := $(DIST_SCRATCH)/deb-root

.PHONY: all deps model build run test clean dist deb

all: build

deps:
	@scripts/install-deps

model: deps
	@scripts/fetch-model

build: deps
	$(SWIFT) build $(BUILD_FLAGS) --product lorad

# The daemon in the foreground on ./run/lorad.sock with adapters/ (the demo tenants kaffeko and
# spokeshed, rebuilt by scripts/train-demo-adapters); Ctrl-C drains and stops it.
SOCKET := run/lorad.sock
run: model build
	@mkdir -p run
	@echo "lorad: serving $(MODEL) and adapters/ on $(SOCKET) (Ctrl-C stops it). Try, in another terminal:"
	@echo "  curl --unix-socket $(SOCKET) http://lorad/v1/chat/completions -H 'Content-Type: application/json' \\"
	@echo "    -d '{\"model\": \"kaffeko\", \"temperature\": 0, \"max_tokens\": 48, \"messages\": [{\"role\": \"user\", \"content\": \"How do I reset my Barista 3?\"}]}'"
	@echo "  $(BIN) ask --socket $(SOCKET) --model spokeshed --temperature 0 --max-tokens 48 'When is Spokeshed open?'   # or --model base"
	exec $(BIN) serve --model $(MODEL) --adapters adapters --socket $(SOCKET)

# --disable-xctest: the suites use Swift Testing only. scripts/test-venv makes the Python environment
# of the OpenAI-client test (pinned openai + httpx from PyPI) and prints its interpreter.
# The distribution build (one more full build), the .deb and a staged `make install` are made first,
# for DistributionTests (LORAD_DIST_BIN, LORAD_DEB, LORAD_INSTALL_ROOT). As root,
# scripts/test-deb-chroot also runs the binary and installs the .deb in a fresh minbase Debian 12
# (debootstrap, about a minute); without root it cannot chroot and says so, and DistributionTests'
# library allow-list remains the check.
INSTALL_TEST_ROOT := $(DIST_SCRATCH)/install-test
# Seconds per round of the daemon's load test (two rounds of 32 clients); raise it for a soak:
# make test LORAD_LOAD_SECONDS=60.
LORAD_LOAD_SECONDS ?= 2
test: model
	$(SWIFT) build $(BUILD_FLAGS) --build-tests
	rm -rf $(INSTALL_TEST_ROOT)
	$(MAKE) --no-print-directory deb install DESTDIR=$(CURDIR)/$(INSTALL_TEST_ROOT)
	@if [ "$$(id -u)" -eq 0 ]; then \
	  scripts/test-deb-chroot $(DIST)/bin/lorad $$(cat $(DIST_SCRATCH)/deb-path) $(DIST_SCRATCH)/chroot $(MODEL); \
	else \
	  echo "not run: scripts/test-deb-chroot (a clean Debian 12 chroot) needs root"; \
	fi
	LORAD_TEST_PYTHON=$$(scripts/test-venv) && \
	LORAD_TEST_MODEL=$(CURDIR)/$(MODEL) LORAD_BIN=$(CURDIR)/$(BIN) LORAD_TEST_PYTHON=$$LORAD_TEST_PYTHON \
	LORAD_DIST_BIN=$(CURDIR)/$(DIST)/bin/lorad LORAD_DEB=$$(cat $(DIST_SCRATCH)/deb-path) \
	LORAD_INSTALL_ROOT=$(CURDIR)/$(INSTALL_TEST_ROOT) LORAD_INSTALL_PREFIX=$(PREFIX) \
	LORAD_LOAD_SECONDS=$(LORAD_LOAD_SECONDS) \
	  $(SWIFT) test $(BUILD_FLAGS) --skip-build --disable-xctest

clean:
	rm -rf .build $(DIST_SCRATCH)

dist: deps
	$(SWIFT) build $(DIST_BUILD_FLAGS) --product lorad
	SWIFT=$(SWIFT) scripts/make-dist $(DIST_SCRATCH)/release/lorad $(DIST_SCRATCH) $(DIST)

# `make deb`: the same files as `make install PREFIX=/usr`, staged, plus maintainer scripts, in
# .build-dist/lorad_VERSION_ARCH.deb (scripts/make-deb; the path is also written to deb-path).
deb: dist
	rm -rf $(DEB_ROOT)
	$(MAKE) --no-print-directory install-files SKIP_DIST=1 DESTDIR=$(CURDIR)/$(DEB_ROOT) PREFIX=/usr
	scripts/make-deb $(DEB_ROOT) $(DIST_SCRATCH)

# `make install`: the distribution binary (above), the systemd units, the configuration, the service
# user, the state directories (tmpfiles.d), shell completions and man pages.
# PREFIX (default /usr/local) is where the binary goes; DESTDIR stages everything under another root
# (packaging, or a harmless trial: make install DESTDIR=/tmp/stage). Units go where systemd looks
# for them: $(PREFIX)/lib/systemd/system for PREFIX /usr or /usr/local (both on systemd's search
# path), /etc/systemd/system for any other PREFIX. The unit's ExecStart is rewritten to the
# installed binary. An existing /etc/lorad/lorad.toml is never overwritten. The "lorad" user comes
# from sysusers.d, /var/lib/lorad/{models,adapters} from tmpfiles.d; systemd-sysusers and
# systemd-tmpfiles run only for a real install (empty DESTDIR). Completions and man pages go under
# PREFIX/share where bash-completion, fish and man look; zsh's directory is Debian's
# vendor-completions for PREFIX /usr, site-functions otherwise.
PREFIX ?= /usr/local
ifneq ($(filter /usr /usr/local,$(PREFIX)),)
UNITDIR ?= $(PREFIX)/lib/systemd/system
else
UNITDIR ?= /etc/systemd/system
endif
SYSUSERSDIR ?= /usr/lib/sysusers.d
TMPFILESDIR ?= /usr/lib/tmpfiles.d
CONFDIR ?= /etc/lorad
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
ifeq ($(PREFIX),/usr)
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/vendor-completions
else
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
endif

.PHONY: install install-files uninstall

install: install-files
	@if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null 2>&1; then \
	  systemd-sysusers $(SYSUSERSDIR)/lorad.conf; \
	fi
	@if [ -z "$(DESTDIR)" ] && command -v systemd-tmpfiles >/dev/null 2>&1; then \
	  systemd-tmpfiles --create $(TMPFILESDIR)/lorad.conf; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "next: copy a model to /var/lib/lorad/models/ (see model.path in $(CONFDIR)/lorad.toml), then"
	@echo "      systemctl enable --now lorad.socket lorad.service; usermod -aG lorad <client user>"

# Copies only (`make deb` stages with it); SKIP_DIST=1 when the caller has just run `make dist`.
install-files: $(if $(SKIP_DIST),,dist)
	install -D -m 0755 $(DIST)/bin/lorad $(DESTDIR)$(PREFIX)/bin/lorad
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
	install -D -m 0644 systemd/lorad.tmpfiles.conf $(DESTDIR)$(TMPFILESDIR)/lorad.conf
	install -D -m 0644 $(DIST)/completions/lorad.bash $(DESTDIR)$(BASHCOMPDIR)/lorad
	install -D -m 0644 $(DIST)/completions/_lorad $(DESTDIR)$(ZSHCOMPDIR)/_lorad
	install -D -m 0644 $(DIST)/completions/lorad.fish $(DESTDIR)$(FISHCOMPDIR)/lorad.fish
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m 0644 $(DIST)/man/*.1 $(DESTDIR)$(MANDIR)/man1/

# Removes what `install` put in place except the configuration and /var/lib/lorad (models, adapters).
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/lorad $(DESTDIR)$(UNITDIR)/lorad.service $(DESTDIR)$(UNITDIR)/lorad.socket \
	  $(DESTDIR)$(SYSUSERSDIR)/lorad.conf $(DESTDIR)$(TMPFILESDIR)/lorad.conf \
	  $(DESTDIR)$(BASHCOMPDIR)/lorad $(DESTDIR)$(ZSHCOMPDIR)/_lorad $(DESTDIR)$(FISHCOMPDIR)/lorad.fish \
	  $(DESTDIR)$(MANDIR)/man1/lorad.1 $(DESTDIR)$(MANDIR)/man1/lorad.*.1
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "kept $(DESTDIR)$(CONFDIR)/lorad.toml, /var/lib/lorad and the lorad user"
