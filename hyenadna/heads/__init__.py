"""Fine-tuning heads on the backbone, the task model that holds them, its loaders, the CNN
baseline and a scikit-learn embedder."""
