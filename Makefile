# make demo: set up .venv and run the main job on bundled real data.
# make test: set up .venv, install the Debian test-data packages, run ruff and the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-data lint bench-long bench-throughput bench-tasks bench-context bench-data pretrain-bacteria4 gpu-check gpu-bundle gpu-pretrain compile-check clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: this machine keeps a CPU build on disk, a bare "torch" would pull CUDA
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

# Fine-tune the bundled pretrained model (tiny-1k-chr20) on the Oct4-vs-MafK binding task, print
# its test metrics beside a CNN and a k-mer baseline trained on the same split, and export
# embeddings (about 5 minutes, 2 cores).
demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/hyenadna finetune --config configs/tasks/tf_oct4_mafk.yaml --config configs/demo_finetune.yaml
	$(BIN)/hyenadna embed --config configs/demo_embed.yaml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Real genomic test files from Debian packages (apt, needs root or sudo; skipped when present).
test-data:
	.ci/install-test-data

test: $(STAMP) lint test-data
	$(BIN)/pytest

test-fast: $(STAMP) lint test-data
	$(BIN)/pytest -m "not slow"

# Long-context speed and memory against the reference algorithm and attention (table + PNG in
# benchmarks/results/). LENGTHS="1024 32768 160000 1000000" for the long runs (an hour or more).
LENGTHS ?= 1024 4096 16384 32768
bench-long: $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e '.[test,bench]'
	$(BIN)/python benchmarks/long_context.py --lengths $(LENGTHS)

# Training and inference tokens/s of the CPU-sized shapes against the matmul floor, in float32 and
# under the CPU's bfloat16 autocast (about 20 minutes).
bench-throughput: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py --json benchmarks/results/train_throughput_cpu.json
	$(BIN)/python benchmarks/train_throughput.py --precision bf16-mixed --json benchmarks/results/train_throughput_cpu_bf16.json

# The task suite: k-mer, CNN, tiny-1k from scratch and the bundled pretrained models fine-tuned on
# the four tasks of data/tasks, seeds 0-2 (about two hours on 2 cores); table in benchmarks/results/tasks/.
bench-tasks: $(STAMP)
	$(BIN)/python benchmarks/tasks.py --jobs 2

# The long-context task (genic_chr20) at 1k, 4k, 16k and 32k: k-mer, Markov, CNNs and Hyena, the table
# and plot in benchmarks/results/tasks/context_curve.* (seed 0 about 90 minutes on 2 cores, most
# of it Hyena at 16k and 32k; then seeds 0-2 at 1k and 4k, and a second Hyena seed at 16k: the runs
# of the published table).
bench-context: $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e '.[test,bench]'
	$(BIN)/python benchmarks/context_curve.py --contexts 1024 4096 16384 32768 --seeds 0
	$(BIN)/python benchmarks/context_curve.py --contexts 1024 4096 --seeds 0 1 2 --methods cnn cnn-max hyena
	$(BIN)/python benchmarks/context_curve.py --contexts 16384 --seeds 0 1 --methods hyena

# Held-out lead over the best Markov chain against the human bases trained on: tiny-1k-chr20's
# recipe on 1/16, 1/4, 1/2 and all of chr20's training stretch (about two hours on 2 cores); table
# in benchmarks/results/human_data_scaling.md.
bench-data: $(STAMP)
	$(BIN)/python benchmarks/human_data_scaling.py --fractions 0.0625 0.25 0.5 1

# Rebuild the bundled tiny-1k-bacteria4 (about 17 minutes on 2 cores) and its held-out table
# (hyenadna/weights/tiny-1k-bacteria4/MODEL_CARD.md): the task's training stretches, pretraining
# from tiny-1k-chr20 on them, then the model and Markov chains on the task's test stretches.
pretrain-bacteria4: $(STAMP)
	for split in train test; do $(BIN)/python -m hyenadna.tasks regions bacteria4 --split $$split --out runs/bacteria4_regions; done
	$(BIN)/hyenadna pretrain --config configs/pretrain_tiny1k_bacteria4.yaml --overwrite true
	$(BIN)/hyenadna heldout --run_config configs/heldout_bacteria4.yaml --split test --model runs/tiny1k_bacteria4/model

# On a CUDA machine whose python3 has torch, triton and pytest (no .venv needed), in about five
# minutes on an H200: the GPU benchmark against attention (JSON, table and PNG in OUT; it compiles
# every kernel it needs on all cores first), then the Triton kernels' tests compiled, outputs poisoned.
OUT ?= benchmarks/results
GPU_BUDGET ?= 140
gpu-check:
	PYTHONPATH=.:$$PYTHONPATH $(PYTHON) benchmarks/gpu_vs_attention.py --out $(OUT) --budget $(GPU_BUDGET)
	PYTHONPATH=.:$$PYTHONPATH timeout 150 $(PYTHON) -m pytest -q -p no:cacheprovider --durations=5 -rf \
		tests/ops/test_triton.py tests/ops/test_paths.py tests/ops/test_dispatch.py -k "triton or dispatch or cuda"

# Pretraining on a lent GPU (configs/pretrain_gpu_genomes.yaml). Here, `make gpu-bundle` gathers
# what the GPU machine lacks into runs/gpu_bundle (about 50 MB: the genomes, and wheels of the
# packages its image does not hold); there, with runs/gpu_bundle carried,
#   make gpu-pretrain OUT=$$OUT GPU_MINUTES=7
# measures the rate over 40 steps, pretrains for as many steps as fill GPU_MINUTES (the cosine
# spanning them) and leaves the model and its logs in OUT. Held-out figures are then computed
# here: hyenadna heldout --run_config configs/pretrain_tiny1k_chr20.yaml --model OUT/model
GPU_MINUTES ?= 7
GPU_PYTHON ?= python3
GPU_CONFIG ?= configs/pretrain_gpu_genomes.yaml
PROBE_STEPS ?= 40
BUNDLE_WHEELS = pysam==0.24.1 jsonargparse==4.53.0 docstring-parser==0.18.0 typeshed-client==2.14.0 tensorboardX==2.6.5
gpu-bundle: $(STAMP)
	mkdir -p runs/gpu_bundle/corpus runs/gpu_bundle/wheels
	cp /usr/share/doc/vt/examples/ref/20.fa.gz /usr/share/doc/vt/examples/ref/20.fa.gz.fai /usr/share/doc/vt/examples/ref/20.fa.gz.gzi runs/gpu_bundle/corpus/
	for g in E.Coli/references/DH1 H.Pylori/references/ELS37 S.Aureus/references/N315 V.Cholerae/references/O395; do \
		cp /usr/share/doc/ragout/examples/$$g.fasta.gz runs/gpu_bundle/corpus/; done
	$(BIN)/pip download -q --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
		-d runs/gpu_bundle/wheels $(BUNDLE_WHEELS)
	du -sh runs/gpu_bundle
gpu-pretrain:
	$(GPU_PYTHON) -c "import pysam, jsonargparse, tensorboardX" 2>/dev/null || \
		$(GPU_PYTHON) -m pip install -q --no-index --no-deps --target runs/gpu_site runs/gpu_bundle/wheels/*.whl
	PYTHONPATH=runs/gpu_site:. $(GPU_PYTHON) cli.py pretrain --config $(GPU_CONFIG) \
		--trainer.max_steps $(PROBE_STEPS) --trainer.val_every_n_steps 0 --trainer.limit_val_batches 0 \
		--output runs/gpu_probe --overwrite > runs/gpu_probe.json
	steps=$$($(GPU_PYTHON) -c "import json, sys, yaml; r = json.load(open('runs/gpu_probe.json'))['throughput']; \
		d = yaml.safe_load(open('$(GPU_CONFIG)'))['data']; \
		'tokens_per_s' in r or sys.exit('no rate in runs/gpu_probe.json: PROBE_STEPS must exceed the 3 steps it leaves out'); \
		print(max(10, int($(GPU_MINUTES) * 60 * r['tokens_per_s'] / (d['batch_size'] * d['length']))))") || exit 1; \
	echo "pretraining for $$steps steps"; \
	PYTHONPATH=runs/gpu_site:. $(GPU_PYTHON) cli.py pretrain --config $(GPU_CONFIG) \
		--trainer.max_steps $$steps --trainer.val_every_n_steps $$((steps / 4 > 0 ? steps / 4 : 1)) \
		--output runs/gpu_pretrain --overwrite > $(OUT)/summary.json
	cp runs/gpu_pretrain/model/* runs/gpu_pretrain/config.yaml $(OUT)/
	cp runs/gpu_pretrain/logs/csv/version_0/metrics.csv $(OUT)/

# Every Triton kernel specialisation compiled ahead of time for sm_80, sm_89 and sm_90 on this CPU,
# with its shared memory against each target's limit (about 7 minutes on 2 cores; CI runs it for
# sm_89 and sm_90, which cover sm_80: the same shared memory, byte for byte, under a larger limit).
compile-check: $(STAMP)
	$(BIN)/python -m hyenadna.ops.triton.compile_check --targets 80 89 90 --jobs 2

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
