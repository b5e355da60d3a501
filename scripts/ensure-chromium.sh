#!/usr/bin/env bash
# ensure-chromium.sh makes sure Debian's chromium is installed, so that the
# browser tests (web/browsertest, chromedp) can drive a real browser.
#
# - A browser is found ($PAYGATE_CHROMIUM, chromium, chromium-browser,
#   google-chrome): nothing to do.
# - Otherwise, as root with apt-get: install Debian's chromium package
#   non-interactively. Without root or apt-get: say what to install, and
#   fail only when CI=true (the browser tests skip elsewhere).
set -euo pipefail

have_browser() {
	[[ -n "${PAYGATE_CHROMIUM:-}" && -x "${PAYGATE_CHROMIUM}" ]] && return 0
	local b
	for b in chromium chromium-browser google-chrome google-chrome-stable; do
		command -v "$b" >/dev/null 2>&1 && return 0
	done
	return 1
}

# Screenshots (UPDATE_SCREENSHOTS=1) show Chinese names: without a CJK font
# chromium draws empty boxes. The tests themselves need no fonts.
if [[ "${UPDATE_SCREENSHOTS:-}" == "1" ]] && ! fc-list 2>/dev/null | grep -qi 'cjk\|wqy'; then
	if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		echo "ensure-chromium: installing fonts-noto-cjk for screenshots" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-noto-cjk >/dev/null ||
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-noto-cjk >/dev/null; }
	else
		echo "ensure-chromium: install fonts-noto-cjk for screenshots with Chinese text" >&2
	fi
fi

if have_browser; then
	exit 0
fi

if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
	echo "ensure-chromium: installing chromium (apt-get install chromium)" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
	have_browser && exit 0
	echo "ensure-chromium: chromium installed but not found on PATH" >&2
	exit 1
fi

msg="ensure-chromium: chromium is not installed; install it (sudo apt-get install chromium) or set PAYGATE_CHROMIUM"
if [[ "${CI:-}" == "true" ]]; then
	echo "$msg" >&2
	exit 1
fi
echo "$msg; the browser tests will be skipped" >&2
