.PHONY: test vet build bench fuzz soak prompts

# test installs and starts what the tests need, then vets and runs every test.
test:
	bash scripts/test.sh

vet:
	go vet ./...

build:
	go build -o bin/verigate ./cmd/verigate

# fuzz runs every fuzz target (the parsers that face the network, the
# request and wire decoders, the load client's JSON reader) for FUZZTIME
# each (default 30s).
FUZZTIME ?= 30s
fuzz:
	@for t in sip/media:FuzzRFC4733 sip/media:FuzzParseAnswer sip/media:FuzzParseINFO route:FuzzParseNumber \
	  twilio:FuzzInputEvent twilio:FuzzOpenContext twilio:FuzzSigner twilio:FuzzReadForm api:FuzzAppendString api:FuzzStartBody api:FuzzDecodeBody \
	  ivr:FuzzDecodeState config:FuzzLoadYAML internal/loadtest:FuzzStringField internal/flatjson:FuzzScan store:FuzzUnmarshalWire; do \
	  echo "fuzz: $$t"; \
	  go test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) ./$${t%%:*}/ || exit 1; \
	done

# soak runs the soak test (test/soak) for SOAK (default 10m; make test
# runs it for 60s): the built gateway under a bounded mixed load with a
# Redis restart, then its limits, approvals, goroutines and heap checked.
# VERIGATE_SOAK_RACE=1 builds the gateway with the race detector.
SOAK ?= 10m
soak:
	VERIGATE_SOAK_DURATION=$(SOAK) go test -count=1 -timeout 3h -v -run '^TestSoak$$' ./test/soak/

bench:
	go test -run '^$$' -bench . -benchmem ./...

# prompts regenerates the embedded prompt audio from prompts/text
# (installs espeak-ng and sox where missing); LOCALES=de,fr limits it.
prompts:
	bash prompts/generate.sh
