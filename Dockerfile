# The issuer service image (the verifier ships as a plain binary to customer hosts).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/issuer ./cmd/issuer

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 issuer && mkdir -p /var/lib/issuer/keys && chown -R issuer /var/lib/issuer
COPY --from=build /out/issuer /usr/local/bin/issuer
USER issuer
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/issuer"]
CMD ["serve"]
