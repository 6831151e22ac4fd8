# Safe Passage - `make help` lists what a newcomer runs.
PY := .venv/bin/python
RASA_DATA := data/nlu data/rules.yml
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONPATH := $(CURDIR)

.DEFAULT_GOAL := help
.PHONY: help setup train run counsellor validate lint test-stories pytest test eval eval-risk eval-risk-bot eval-semantic eval-offer benchmark-semantic benchmark benchmark-telegram benchmark-sms benchmark-load benchmark-desk benchmark-faults benchmark-throughput sms audit translations clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-19s %s\n", $$1, $$2}'

setup: ## create .venv (Python 3.10) with the pinned dependencies
	@bash scripts/setup.sh

train: setup ## train the model if the training data changed (models/)
	@$(PY) -m bot train

run: train ## chat with the bot in this terminal (starts Rasa + actions for you)
	@$(PY) -m bot chat

counsellor: setup ## counsellor console beside `make run` (queue, claim, say, release, close)
	@$(PY) -m bot counsellor

validate: setup ## rasa data validate --fail-on-warnings
	$(PY) -m rasa data validate --fail-on-warnings --domain domain.yml --data $(RASA_DATA) --config config.yml

lint: setup ## ruff + mypy
	$(PY) -m ruff check bot actions tests benchmarks scripts
	$(PY) -m ruff format --check bot actions tests benchmarks scripts
	$(PY) -m mypy bot actions

test-stories: train ## dialogue test stories, failing on any prediction error
	$(PY) -m rasa test core --stories tests/stories --model "$$($(PY) -m bot train)" --fail-on-prediction-errors --out results/core

pytest: train ## unit, content, NLU-quality and end-to-end tests
	$(PY) -m pytest -q tests

test: validate lint test-stories pytest ## the whole test suite (what CI runs)

eval: train ## NLU F1 and language-id accuracy tables (held-out data)
	$(PY) -m benchmarks.evaluate

eval-risk: setup ## risk screener: recall / false escalations per language, latency (add ARGS=--with-nlu)
	$(PY) -m benchmarks.risk $(ARGS)

eval-risk-bot: train ## the whole bot on the unseen risk set: urgent escalated, benign escalated
	$(PY) -m benchmarks.risk_bot

eval-semantic: train ## risk decision, lexicon vs lexicon + semantic, per language (blind + floor sets; ARGS=--bot for the whole bot)
	$(PY) -m benchmarks.semantic_eval $(ARGS)

eval-offer: setup ## offer check: per-flag/per-language precision/recall (blind set), screenshot OCR accuracy, latency (ARGS=--images N)
	$(PY) -m benchmarks.offer_eval $(ARGS)

benchmark-semantic: train ## the semantic layer's cost side by side with the lexicon alone (ARGS=--train)
	$(PY) -m benchmarks.semantic_speed $(ARGS)

benchmark-telegram: train ## Telegram channel: updates/s and p95 latency at 20 concurrent users
	$(PY) -m benchmarks.telegram

benchmark-sms: train ## SMS: segments per answer per language, MO->MT latency through real Kannel
	$(PY) -m benchmarks.sms

benchmark-load: train ## load at 10/50/200 users, 1 vs 2 Rasa instances (PostgreSQL + Redis, started for you)
	$(PY) -m benchmarks.load

benchmark-desk: ## web desk: 20 counsellors on live views while cases and lines flow (SSE latency p50/p95, desk CPU)
	$(PY) -m benchmarks.desk_load $(ARGS)

benchmark-faults: train ## gateways SIGKILLed, PostgreSQL restarted, provider 500s, 403: answered once / twice / lost (ARGS=--db sqlite)
	$(PY) -m benchmarks.faults $(ARGS)

benchmark-throughput: train ## Rasa REST vs gateway vs Telegram vs SMS in one run, 1/20/50 users (ARGS=--baseline DIR, --profile DIR)
	$(PY) -m benchmarks.throughput $(ARGS)

sms: train ## serve SMS (Kannel / Twilio: set SP_KANNEL_* or SP_TWILIO_*, see README)
	$(PY) -m bot sms

benchmark: train ## speed and memory table (training, load, latency, RSS)
	$(PY) -m benchmarks.performance

audit: ## known vulnerabilities of the pinned packages (pip-audit in its own venv; needs PyPI's advisory data)
	python3 -m venv .audit-venv && .audit-venv/bin/pip install -q pip-audit
	.audit-venv/bin/pip-audit --no-deps --disable-pip -r constraints.txt

translations: setup ## export the texts to translations/*.po, the sheet native reviewers open (docs/translation.md)
	$(PY) -m bot content export

clean: ## remove models, local databases and results
	rm -rf models/*.tar.gz var results .pytest_cache
