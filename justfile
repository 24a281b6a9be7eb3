# storage-service developer commands (https://just.systems). `just` lists them.

set positional-arguments

# List the recipes
default:
    @{{just_executable()}} --list

# Run the server; arguments go to the binary (just run --help)
run *args:
    cargo run -p storage-server -- "$@"

# Run the test suite with its services; arguments go to the test runner (just test -p storage-domain)
test *args:
    tests/run.sh "$@"

# Benchmarks: starts PostgreSQL, Garage, the release server and the stand-in, prints the tables
# and writes bench/results/ (just bench; just bench proxy --reps 1; scenarios: all proxy
# concurrency ops presign complete list blob)
bench *args:
    cargo build --release -p storage-server -p storage-bench
    "${CARGO_TARGET_DIR:-target}/release/storage-bench" "$@"

# Lint the whole workspace, warnings are errors
lint:
    cargo clippy --workspace --all-targets -- -D warnings

# Format the whole workspace
fmt:
    cargo fmt --all

# Run the curl sessions of docs/api.md against a fresh stack (--update rewrites the outputs)
docs-check *args:
    docs/check-commands.sh "$@"

# Check deploy/ and env.example without a container engine
deploy-check:
    deploy/check.sh

# Run what CI runs
ci:
    .ci/run
