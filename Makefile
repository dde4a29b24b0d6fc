# make demo: set up .venv and run the main job on bundled real data.
# make test: set up .venv, install the Debian test-data packages, run ruff and the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-data lint bench-long bench-throughput bench-tasks pretrain-bacteria4 gpu-check compile-check clean

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

# Training and inference tokens/s of the CPU-sized shapes against the matmul floor (about 10 minutes).
bench-throughput: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py --json benchmarks/results/train_throughput_cpu.json

# The task suite: k-mer, CNN, tiny-1k from scratch and the bundled pretrained models fine-tuned on
# the four tasks of data/tasks, seeds 0-2 (about two hours on 2 cores); table in benchmarks/results/tasks/.
bench-tasks: $(STAMP)
	$(BIN)/python benchmarks/tasks.py --jobs 2

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

# Every Triton kernel specialisation compiled ahead of time for sm_80, sm_89 and sm_90 on this CPU,
# with its shared memory against each target's limit (about 10 minutes on 2 cores; CI runs it).
compile-check: $(STAMP)
	$(BIN)/python -m hyenadna.ops.triton.compile_check --targets 80 89 90 --jobs 2

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
