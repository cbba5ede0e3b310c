# pinpipe's one task runner. CI runs `make test` (through .ci/run).
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help setup setup-spark setup-test up down status test test-k8s cluster-up cluster-down test-unit lint bench soak image clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@bash infra/require.sh python java mvn
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e .
	@touch $(STAMP)

# the test and lint tools (the `dev` extra), and Spark (the `spark` extra): not for `make up`
$(VENV)/.installed-dev: $(STAMP)
	$(PY) -m pip install -q -c requirements.lock -e '.[dev]'
	@touch $@

$(VENV)/.installed-spark: $(STAMP)
	$(PY) -m pip install -q -c requirements.lock -e '.[spark]'
	@touch $@

setup: $(STAMP) ## Install what the pipeline needs: .venv with its packages, Kafka's jars (idempotent)
	@bash infra/kafka/kafka.sh install

setup-spark: setup $(VENV)/.installed-spark ## pyspark and the delta-spark/hadoop-aws jars (else: on first use of a Spark command)
	@bash infra/spark/jars.sh

setup-test: setup-spark $(VENV)/.installed-dev ## setup and Spark, plus what the tests use: test tools, SeaweedFS (built once), PostgreSQL, MariaDB
	@bash infra/require.sh go curl postgres mariadb podman runc debootstrap prometheus
	@bash infra/s3/seaweedfs.sh install

up: setup ## Start Kafka and the five services under a supervisor (OBSERVE=1: and Prometheus); Ctrl-C stops all
	@$(if $(OBSERVE),bash infra/require.sh prometheus)
	$(VENV)/bin/pinpipe up $(if $(OBSERVE),--observe)

down: ## Stop a `pinpipe up` run (foreground or --detach)
	$(VENV)/bin/pinpipe down

status: ## Each service of a `pinpipe up` run: pid, state, readiness, restarts, uptime
	@$(VENV)/bin/pinpipe status

test: setup-test ## Unit, integration (real Kafka, real S3) and end-to-end tests
	$(VENV)/bin/pytest -p no:cacheprovider --ignore=tests/k8s

test-k8s: setup-test ## The local overlay on a real single-node Kubernetes the test builds (root)
	$(VENV)/bin/pytest -p no:cacheprovider tests/k8s

cluster-up: ## Build (once) and start the single-node Kubernetes of the k8s tests (root)
	bash infra/k8s/cluster.sh up

cluster-down: ## Stop it and undo what it changed on the host (also after a failed run)
	bash infra/k8s/cluster.sh down

test-unit: setup $(VENV)/.installed-dev ## Unit tests only (no servers)
	$(VENV)/bin/pytest -p no:cacheprovider tests/unit

lint: $(VENV)/.installed-spark $(VENV)/.installed-dev ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy docs/diagram.py

bench: setup-test ## Benchmarks (numbers printed and written under var/bench/)
	@bash infra/require.sh go
	$(PY) -m bench.ingest_bench
	$(PY) -m bench.emulator_bench
	$(PY) -m bench.cleaner_bench
	$(PY) -m bench.sink_bench
	$(PY) -m bench.aggregator_bench
	$(PY) -m bench.pipeline_bench
	$(PY) -m bench.batch_bench
	$(PY) -m bench.lake_bench
	$(PY) -m bench.first_answer
	$(PY) -m bench.results

soak: setup-test ## 30 minutes of steady load on the whole pipeline: RSS, fds and lag sampled (var/bench/soak.*)
	$(PY) -m bench.soak

image: ## Build the container image localhost/pinpipe:dev with podman (and its base, if missing)
	@bash infra/image/build.sh

clean: ## Remove var/ (local data, logs, Kafka state)
	rm -rf var
