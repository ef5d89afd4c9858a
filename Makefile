# Lectern's build. A newcomer needs two targets: `make run` and `make test`.
GO      ?= go
BIN     := bin/lectern
# npm ci ran for the current package.json and package-lock.json (hls.js, tus-js-client)
WEB     := internal/web/node_modules/.installed
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# Arguments for `make run`, e.g. make run ARGS="--listen 0.0.0.0:8080"
ARGS    ?=

.PHONY: run test test-short build web deps-run deps-test vet clean bench-transcode bench-upload bench-origin bench-edge bench-edge-memory bench-herd bench-router bench-ttff bench-scale

## run: install ffmpeg if missing, build, start `lectern serve` with a sample lecture, print the URLs
run: deps-run web build
	./$(BIN) serve --sample $(ARGS)

## test: install and start every real part the tests need (ffmpeg, MinIO, PostgreSQL), then run all tests
test: deps-test web
	$(GO) vet ./...
	scripts/test-services.sh $(GO) test -count=1 -timeout 20m ./...

## test-short: unit tests only, no servers needed (real-server suites skip)
test-short:
	$(GO) test -short ./...

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/lectern

web: $(WEB)
$(WEB): internal/web/package.json internal/web/package-lock.json
	cd internal/web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps-run:
	scripts/install-deps.sh run

deps-test:
	scripts/install-deps.sh test

vet:
	$(GO) vet ./...

clean:
	rm -rf bin internal/web/node_modules

## bench-transcode: lectern transcode vs bare ffmpeg vs a fixed ladder; writes docs/benchmarks.md
bench-transcode:
	bash bench/transcode.sh --write

## bench-upload: a 1 GiB upload through lectern (tus) vs a plain write to the store (disk, MinIO); writes docs/benchmarks.md
bench-upload:
	bash bench/upload.sh --write

## bench-origin: the origin's hot-cache hits vs nginx sendfile (loopback, ~2.5 min); writes docs/benchmarks.md
bench-origin:
	bash bench/origin-hit.sh --write

## bench-edge: the edge's cache hits vs nginx proxy_cache and Varnish (loopback, ~1.5 min); prints a table
bench-edge:
	bash bench/edge-hit.sh

## bench-edge-memory: the edge's resident memory after filling its memory tier three times over (~1 min)
bench-edge-memory:
	bash bench/edge-memory.sh

## bench-herd: 400 clients miss the same segment on one edge while the upstream takes 200 ms to send it (loopback, ~10 s)
bench-herd:
	$(GO) test -run '^$$' -bench Herd -benchtime 10x -count 3 ./cdn/

## bench-router: router decisions per second on one core with 186 edges: the Go benchmarks (in process), then over loopback HTTP with wrk (~40 s)
bench-router:
	$(GO) test -run '^$$' -bench Router -cpu 1 -benchtime 2s -count 3 ./cdn/
	bash bench/router-http.sh

## bench-ttff: time to first frame in headless Chromium, cold edge vs warm vs nginx with a bare hls.js page (loopback, ~1.5 min); writes docs/benchmarks.md
bench-ttff:
	bash bench/ttff.sh --write

## bench-scale: 10 000 virtual students on 2 regions x 2 edges + origin + MinIO, then with collapsing, peer group, prefetch each off (loopback, ~30 min); writes docs/benchmarks.md
bench-scale:
	bash bench/scale.sh --write
