"""Jobs built on the model: language-model loss, pretraining, fine-tuning, embedding export."""
