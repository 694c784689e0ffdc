# syntax=docker/dockerfile:1
#
# One image for every golden subcommand (serve auth|user|gateway, certs,
# graylog setup, loadgen, probe, ...): docker-compose.yml picks the command.
#
#   docker build -t golden:local .
#
# integration/compose_test.go runs the `go build` line below, with the same
# environment and flags, and checks that the binary is statically linked:
# keep it on one line in this form.

# Builder: the Go release go.mod asks for (go 1.26.8).
FROM golang:1.26.8-bookworm AS builder
WORKDIR /src

# Modules first, in their own layer: it is rebuilt only when go.mod or go.sum
# change, not on every source edit.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .
# Static (no cgo: the runtime image has no libc), reproducible (-trimpath)
# and without symbol tables (-s -w).
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/golden ./cmd/golden

# Runtime: no shell, no package manager, user nonroot (65532); healthchecks
# use `golden probe URL`.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /out/golden /golden
# Numeric, so that runtimes checking "runAsNonRoot" can verify it.
USER 65532:65532
ENTRYPOINT ["/golden"]
