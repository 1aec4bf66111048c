# The two commands a newcomer needs:  make run   and   make test
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
ADDR ?= 127.0.0.1:8000

.PHONY: run test install lint format messages worker beat

## run: install into .venv, migrate, load the demo and serve http://127.0.0.1:8000
run: install
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runserver $(ADDR)

## test: the whole test suite (DATABASE_URL and REDIS_URL choose PostgreSQL and Redis)
test: install
	mkdir -p var
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## install: one .venv for running, testing and linting: requirements-dev.txt, which includes
## requirements.txt (what production runs; the Dockerfile installs only that file)
install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## messages: refresh and compile the Japanese translations (needs GNU gettext)
messages: install
	$(BIN)/python manage.py makemessages -l ja --ignore=.venv --ignore=var
	$(BIN)/python manage.py compilemessages --ignore=.venv

## worker / beat: Celery processes (need REDIS_URL)
worker: install
	$(BIN)/celery -A contactcenter worker --loglevel=INFO

beat: install
	$(BIN)/celery -A contactcenter beat --loglevel=INFO --schedule var/celerybeat-schedule
