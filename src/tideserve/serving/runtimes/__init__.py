"""Framework runtimes: one module per framework, each providing `framework(options)` (its
default model_fn and predict_fn). `loader.load_runtime` picks one and puts the user's
code/inference.py over it. Kept empty so importing a runtime imports nothing else."""
