#!/usr/bin/env bash
# Regenerates the embedded prompt audio (prompts/audio) from the texts
# (prompts/text) with espeak-ng and sox, installing them where missing.
# Run from the repository root: make prompts [LOCALES=de,fr].
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v sox >/dev/null || missing+=(sox)
if ((${#missing[@]})); then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

go run ./prompts/internal/gen -text prompts/text -out prompts/audio -locales "${LOCALES:-}"

# Prove the result complete and playable before it is committed.
go test -count=1 -run 'TestEveryLocaleHasEveryText|TestAudioFiles' ./prompts
