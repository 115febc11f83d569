.PHONY: test vet build bench fuzz prompts

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
	@for t in sip:FuzzRFC4733 sip:FuzzParseAnswer sip:FuzzParseINFO route:FuzzParseNumber \
	  twilio:FuzzInputEvent twilio:FuzzOpenContext twilio:FuzzSigner twilio:FuzzReadForm api:FuzzAppendString api:FuzzStartBody api:FuzzDecodeBody \
	  ivr:FuzzDecodeState config:FuzzLoadYAML internal/loadtest:FuzzStringField internal/flatjson:FuzzScan store:FuzzUnmarshalWire; do \
	  echo "fuzz: $$t"; \
	  go test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) ./$${t%%:*}/ || exit 1; \
	done

bench:
	go test -run '^$$' -bench . -benchmem ./...

# prompts regenerates the embedded prompt audio from prompts/text
# (installs espeak-ng and sox where missing); LOCALES=de,fr limits it.
prompts:
	bash prompts/generate.sh
