PYTHON ?= python3

.PHONY: install demo test

# Install the package (editable) with what the tests need.
install:
	$(PYTHON) -m pip install -q -e ".[test]"

# The embedded default: the relay over a bundled sample inbox, no servers needed.
demo: install
	$(PYTHON) -m mailrelay demo

# The whole test suite; it starts its own Dovecot and SMTP server on loopback, and a headless chromium.
test: install
	@command -v dovecot >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd openssl; }
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }
	$(PYTHON) -m pytest -q
